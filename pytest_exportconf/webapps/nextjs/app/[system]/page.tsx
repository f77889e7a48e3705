import type { Metadata } from "next";
import { notFound } from "next/navigation";

import { FORMATS, SYSTEMS } from "@/lib/systems";

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
  if (!(system === "number_predictor" || system === "sentiment")) notFound();
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
      <Predictor system={system} format={format} />
    </main>
  );
}
