// The tensor codec: wire tensors (dtype + shape + base64 of the little-endian bytes, strings as lists)
// to typed arrays and back. int64 is decoded into a BigInt64Array, exact beyond 2^53.

import os from "node:os";

import type { Dtype, NumericDtype, RunRequest, WireTensor } from "./protocol.js";

export type NumericArray = Float32Array | Float64Array | Int8Array | Int32Array | BigInt64Array | Uint8Array;

export interface HostTensor {
  name: string | null;
  dtype: Dtype;
  shape: number[];
  data: NumericArray | string[];
}

interface ArrayCtor {
  readonly BYTES_PER_ELEMENT: number;
  new (buffer: ArrayBuffer, byteOffset: number, length: number): NumericArray;
}

export const ARRAYS: Readonly<Record<NumericDtype, ArrayCtor>> = {
  float32: Float32Array,
  float64: Float64Array,
  int8: Int8Array,
  int32: Int32Array,
  int64: BigInt64Array,
  uint8: Uint8Array,
  bool: Uint8Array,
};

export const DTYPES: readonly Dtype[] = [...(Object.keys(ARRAYS) as NumericDtype[]), "string"];

export function isNumeric(dtype: string | undefined): dtype is NumericDtype {
  return dtype !== undefined && Object.prototype.hasOwnProperty.call(ARRAYS, dtype);
}

export function isDtype(dtype: string | undefined): dtype is Dtype {
  return dtype === "string" || isNumeric(dtype);
}

function checkHost(): void {
  // The wire format is little-endian; typed arrays use the host's order.
  if (os.endianness() !== "LE") throw new Error("the exportconf harness needs a little-endian host");
}

export function decodeTensor(t: WireTensor): HostTensor {
  checkHost();
  if (t === null || typeof t !== "object" || !Array.isArray(t.shape)) {
    throw new Error(`a tensor is {name, dtype, shape, data}; got ${JSON.stringify(t)?.slice(0, 200)}`);
  }
  const shape = t.shape.map(Number);
  const count = shape.reduce((a, b) => a * b, 1);
  const name = t.name ?? null;
  if (t.dtype === "string") {
    if (!Array.isArray(t.data) || t.data.length !== count) throw new Error("string tensor: data must be a list of shape's size");
    return { name, dtype: "string", shape, data: t.data.map(String) };
  }
  if (!isNumeric(t.dtype)) {
    throw new Error(`unknown tensor dtype ${JSON.stringify(t.dtype)}; supported: ${DTYPES.join(", ")}`);
  }
  if (typeof t.data !== "string") throw new Error(`tensor ${name ?? ""}: numeric data must be base64`);
  const Ctor = ARRAYS[t.dtype];
  const bytes = new Uint8Array(Buffer.from(t.data, "base64")); // a copy at offset 0, so aligned
  if (bytes.byteLength !== count * Ctor.BYTES_PER_ELEMENT) {
    throw new Error(`tensor ${name ?? ""}: ${bytes.byteLength} bytes for ${t.dtype}${JSON.stringify(shape)}`);
  }
  return { name, dtype: t.dtype, shape, data: new Ctor(bytes.buffer, 0, count) };
}

export function encodeTensor(t: HostTensor): WireTensor {
  if (Array.isArray(t.data)) return { name: t.name, dtype: "string", shape: t.shape.map(Number), data: t.data.map(String) };
  if (!isNumeric(t.dtype)) throw new Error(`cannot send dtype ${t.dtype}; supported: ${DTYPES.join(", ")}`);
  const arr = t.data;
  return {
    name: t.name,
    dtype: t.dtype,
    shape: t.shape.map(Number),
    data: Buffer.from(arr.buffer, arr.byteOffset, arr.byteLength).toString("base64"),
  };
}

export function castTo(type: NumericDtype, data: NumericArray): NumericArray {
  const values = Array.from(data as ArrayLike<number | bigint>, Number);
  switch (type) {
    case "int64":
      return BigInt64Array.from(values, (v) => BigInt(Math.trunc(v)));
    case "float32":
      return Float32Array.from(values);
    case "float64":
      return Float64Array.from(values);
    case "int8":
      return Int8Array.from(values);
    case "int32":
      return Int32Array.from(values);
    case "uint8":
    case "bool":
      return Uint8Array.from(values);
  }
}

// The request's tensors; one sent without a name takes its name from `input_spec` at the same position.
export function requestTensors(req: RunRequest): HostTensor[] {
  const raw = Array.isArray(req.inputs) ? req.inputs : [req.inputs];
  const spec = req.input_spec === undefined ? [] : Array.isArray(req.input_spec) ? req.input_spec : [req.input_spec];
  return raw.map((w, i) => {
    const t = decodeTensor(w);
    return t.name === null && spec[i] ? { ...t, name: spec[i].name } : t;
  });
}

// The request's inputs in the shape they came (a list or one tensor), for forwarding.
export function sameShapeAs(req: RunRequest, tensors: HostTensor[]): WireTensor | WireTensor[] {
  const wire = tensors.map(encodeTensor);
  if (Array.isArray(req.inputs)) return wire;
  if (wire.length !== 1 || !wire[0]) throw new Error(`one tensor was sent; ${wire.length} to forward`);
  return wire[0];
}
