import { genericEntry } from "@/lib/files";
import { model } from "@/lib/models";
import { genericSystem, HttpError, SYSTEMS } from "@/lib/systems";

export const runtime = "nodejs";
export const dynamic = "force-dynamic";

const json = (status: number, body: unknown): Response => Response.json(body, { status });

export async function POST(req: Request, ctx: { params: Promise<{ system: string; format: string }> }): Promise<Response> {
  const { system, format } = await ctx.params;
  try {
    const generic = SYSTEMS[system] ? null : genericEntry(system, format);
    const sys = SYSTEMS[system] ?? genericSystem(generic!.input, generic!.title);
    const type = (req.headers.get("content-type") ?? "").split(";")[0]?.trim() ?? "";
    if (type !== "application/json") throw new HttpError(415, `Content-Type must be application/json, got ${type || "none"}`);
    let body: unknown;
    try {
      body = JSON.parse(await req.text());
    } catch (e) {
      throw new HttpError(400, `malformed JSON: ${(e as Error).message}`);
    }
    if (body === null || typeof body !== "object" || Array.isArray(body)) throw new HttpError(400, "the body must be a JSON object");
    const input = sys.parse(body as Record<string, unknown>);
    const m = await model(system, format);
    const t0 = performance.now();
    const score = await m.predict(input);
    return json(200, { system, format, ...sys.answer(score), ms: performance.now() - t0, load_ms: m.loadMs });
  } catch (e) {
    if (e instanceof HttpError) return json(e.status, { error: e.message });
    console.error(e);
    return json(500, { error: `${(e as Error).name}: ${(e as Error).message}` });
  }
}
