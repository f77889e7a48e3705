import type { Metadata } from "next";
import { notFound } from "next/navigation";

import { genericEntry } from "@/lib/files";
import { FORMATS, HttpError, SYSTEMS } from "@/lib/systems";

import GenericPredictor from "./GenericPredictor";
import Predictor from "./Predictor";

interface Props {
  params: Promise<{ system: string }>;
  searchParams: Promise<{ format?: string }>;
}

const title = (system: string, format: string): string => `${SYSTEMS[system]?.title ?? system} — ${format} — Next.js`;

export async function generateMetadata({ params, searchParams }: Props): Promise<Metadata> {
  const [{ system }, { format = "onnx" }] = await Promise.all([params, searchParams]);
  return { title: title(system, format) };
}

export default async function SystemPage({ params, searchParams }: Props) {
  const [{ system }, { format = "onnx" }] = await Promise.all([params, searchParams]);
  let form;
  if (system === "number_predictor" || system === "sentiment") {
    form = <Predictor system={system} format={format} />;
  } else {
    // any other system: a form built from its input, pre-filled with a golden row
    let generic;
    try {
      generic = genericEntry(system, format);
    } catch (e) {
      if (e instanceof HttpError) notFound();
      throw e;
    }
    form = <GenericPredictor system={system} format={format} input={generic.input} example={generic.example ?? null} />;
  }
  return (
    <main>
      <h1>{title(system, format)}</h1>
      <form id="form" method="get">
        <label>
          Model format{" "}
          <select id="format" name="format" defaultValue={format}>
            {FORMATS.map((f) => (
              <option key={f}>{f}</option>
            ))}
          </select>
        </label>{" "}
        <button type="submit">Switch</button>
      </form>
      {form}
    </main>
  );
}
