import type { Metadata } from "next";
import { notFound } from "next/navigation";

import { SYSTEMS } from "@/lib/systems";

import BrowserPredictor from "./BrowserPredictor";

interface Props {
  params: Promise<{ system: string }>;
  searchParams: Promise<{ format?: string }>;
}

const title = (system: string, format: string): string =>
  `${SYSTEMS[system]?.title ?? system} — ${format} — in the browser (Next.js)`;

export async function generateMetadata({ params, searchParams }: Props): Promise<Metadata> {
  const [{ system }, { format = "onnx" }] = await Promise.all([params, searchParams]);
  return { title: title(system, format) };
}

// The model runs in the page itself: onnxruntime-web for ONNX, TensorFlow.js for the converted SavedModel.
export default async function BrowserPage({ params, searchParams }: Props) {
  const [{ system }, { format = "onnx" }] = await Promise.all([params, searchParams]);
  if (!(system === "number_predictor" || system === "sentiment")) notFound();
  return (
    <main>
      <h1>{title(system, format)}</h1>
      <BrowserPredictor system={system} format={format} />
    </main>
  );
}
