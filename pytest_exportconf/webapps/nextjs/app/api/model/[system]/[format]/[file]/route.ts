import fs from "node:fs";

import { modelFile } from "@/lib/files";
import { HttpError } from "@/lib/systems";

export const runtime = "nodejs";
export const dynamic = "force-dynamic";

export async function GET(
  _req: Request,
  ctx: { params: Promise<{ system: string; format: string; file: string }> },
): Promise<Response> {
  const { system, format, file } = await ctx.params;
  try {
    const p = modelFile(system, format, file);
    if (!fs.existsSync(p)) throw new HttpError(404, `no file ${file}`);
    const type = p.endsWith(".json") ? "application/json" : "application/octet-stream";
    return new Response(new Uint8Array(fs.readFileSync(p)), { headers: { "content-type": type } });
  } catch (e) {
    const status = e instanceof HttpError ? e.status : 500;
    return Response.json({ error: (e as Error).message }, { status });
  }
}
