import Link from "next/link";

import { FORMATS, SYSTEMS } from "@/lib/systems";

export default function Index() {
  return (
    <main>
      <h1>exportconf systems — Next.js</h1>
      <ul>
        {Object.entries(SYSTEMS).flatMap(([s, def]) =>
          FORMATS.map((f) => (
            <li key={`${s}/${f}`}>
              <Link href={`/${s}?format=${f}`}>{`${def.title} (${f})`}</Link>
            </li>
          )),
        )}
      </ul>
    </main>
  );
}
