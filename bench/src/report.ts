// Tables for the terminal, a summary for the README, and the SVG chart; all from the results.
import { systems, type Kind, type Promised, type System } from "./systems.js";
import { journalRatio, type Counts, type JournalSample, type Workload } from "./workloads.js";

export interface Row {
  /** The system's name. */
  system: string;
  kind: Kind;
  promised: Promised;
  note: string;
  failure?: string | undefined;
  opsPerSecond?: number | undefined;
  ms?: number | undefined;
  ops?: number | undefined;
  stallMs?: number | undefined;
  lost?: number | undefined;
  /** Sequential sets: the first set's time, and the rate of the sets after it. */
  firstMs?: number | undefined;
  restPerSecond?: number | undefined;
  heapBytes?: number | undefined;
  fileBytes?: number | undefined;
  /** aiokv's journal mode: its journal's and document's bytes where the journal was longest against the document. */
  journal?: JournalSample | undefined;
  /** The limit this row is compared with, and how many times slower than it this row is. */
  limit?: string | undefined;
  ratio?: number;
  /** Sets into a prefilled store: this rate over the same system's rate for the same sets into an empty store. */
  vsEmpty?: number;
  /** The same for the sets after the first. */
  restVsEmpty?: number;
}

interface Results {
  counts: Counts;
  results: Array<{ workload: Workload; title: string; rows: Row[] }>;
}

interface Report extends Results {
  date: string;
  machine: { cpu: string; cores: number; node: string };
}

/** Workloads measured as one open's time rather than a rate. */
const inMs = (workload: Workload): boolean => workload === "cold" || workload === "coldJournal";
/** Workloads that measure the heap, not speed, and have no panel in the chart. */
const heapOnly = (workload: Workload): boolean => workload === "memory";

const rate = (n: number | undefined): string => (n === undefined ? "" : n >= 100 ? Math.round(n).toLocaleString("en-US") : n.toFixed(1));
const kib = (n: number | undefined): string => (n === undefined ? "" : `${Math.round(n / 1024).toLocaleString("en-US")} KiB`);

/** Bytes, in KiB from 10 KiB on. */
const bytes = (n: number): string => (n < 10 * 1024 ? `${n.toLocaleString("en-US")} B` : kib(n));

const journalText = (sample: JournalSample | undefined): string => {
  if (sample === undefined) return "";
  const ratio = journalRatio(sample);
  return `${bytes(sample.journalBytes)} / ${bytes(sample.documentBytes)} (${Number.isFinite(ratio) ? `${ratio.toFixed(2)}x` : "no document"})`;
};

interface Column {
  header: string;
  cell(row: Row): string;
}

function columns(workload: Workload, rows: Row[]): Column[] {
  const stall: Column = { header: "max stall", cell: (row) => (row.stallMs === undefined ? "" : `${row.stallMs.toFixed(1)} ms`) };
  const heap: Column[] = [
    { header: "heap held", cell: (row) => kib(row.heapBytes) },
    { header: "files", cell: (row) => kib(row.fileBytes) },
    { header: "heap / file", cell: (row) => (row.heapBytes !== undefined && row.fileBytes ? `${(row.heapBytes / row.fileBytes).toFixed(1)}x file` : "") },
  ];
  const speed: Column = {
    header: inMs(workload) ? "time" : "speed",
    cell: (row) => {
      if (inMs(workload)) return `${row.ms?.toFixed(1) ?? ""} ms`;
      const partial = row.ops !== undefined && row.ops < 10 ? ` (${row.ops} done)` : "";
      return `${rate(row.opsPerSecond)}/s${partial}`;
    },
  };
  const picked: Column[] =
    workload === "memory"
      ? heap
      : workload === "heapAfterSets"
        ? [...heap, speed, stall]
        : [
            speed,
            { header: "x limit", cell: (row) => (row.ratio === undefined ? "" : `${row.ratio.toFixed(2)}x`) },
            ...(workload === "bigStore" || workload === "hugeStore" ? [{ header: "x empty", cell: (row: Row) => (row.vsEmpty === undefined ? "" : `${row.vsEmpty.toFixed(2)}x`) }] : []),
            ...(rows.some((row) => row.firstMs !== undefined)
              ? [
                  { header: "first set", cell: (row: Row) => (row.firstMs === undefined ? "" : `${row.firstMs.toFixed(1)} ms`) },
                  {
                    header: workload === "bigStore" || workload === "hugeStore" ? "after it (x empty)" : "after it",
                    cell: (row: Row) =>
                      row.restPerSecond === undefined
                        ? ""
                        : `${rate(row.restPerSecond)}/s${row.restVsEmpty === undefined ? "" : ` (${row.restVsEmpty.toFixed(2)}x)`}`,
                  },
                ]
              : []),
            stall,
            { header: "lost", cell: (row) => (row.lost === undefined ? "" : String(row.lost)) },
          ];
  if (rows.some((row) => row.journal !== undefined)) picked.push({ header: "journal / document", cell: (row) => journalText(row.journal) });
  return picked;
}

/** A plain-text table for the terminal. */
export function table(workload: Workload, title: string, rows: Row[]): string {
  const picked = columns(workload, rows);
  const lines = [
    ["system", "promise", ...picked.map((column) => column.header), "note"],
    ...rows.map((row) => [row.system, row.promised, ...(row.failure ? [row.failure, ...picked.slice(1).map(() => "")] : picked.map((column) => column.cell(row))), row.note]),
  ];
  const widths = lines[0]?.map((_, i) => Math.max(...lines.map((line) => (line[i] ?? "").length))) ?? [];
  const format = (line: string[]): string => line.map((cell, i) => cell.padEnd(widths[i] ?? 0)).join("  ").trimEnd();
  return [`\n${title}`, format(lines[0] ?? []), widths.map((w) => "-".repeat(w)).join("  "), ...lines.slice(1).map(format)].join("\n");
}

/** The README's headline table: aiokv against its limit and against the fastest peer. */
export function summary(report: Report): string {
  const { aiokvSync, aiokvNoSync, aiokvJournal, aiokvJournalNoSync, sqliteFull, lmdb, aiokvRedis, keyvRedis } = systems;
  const shown = [aiokvSync, aiokvNoSync, aiokvJournal, aiokvJournalNoSync];
  const named = [sqliteFull, lmdb];
  const lines = [
    `Measured ${report.date.slice(0, 10)} on ${report.machine.cores} cores (${report.machine.cpu}), Node ${report.machine.node}; \`pnpm bench\` for the full tables.`,
    "",
    `| workload | ${shown.map((system) => system.name).join(" | ")} | fastest other file peer | ${named.map((system) => system.name).join(" | ")} | ${aiokvRedis.name} | ${keyvRedis.name} |`,
    `|${" --- |".repeat(shown.length + named.length + 4)}`,
  ];
  for (const { workload, title, rows } of report.results) {
    if (heapOnly(workload) || workload === "heapAfterSets") continue;
    const figure = (row: Row): string => (inMs(workload) ? `${row.ms?.toFixed(1)} ms` : `${rate(row.opsPerSecond)}/s`);
    const show = (system: System): string => {
      const row = rows.find((r) => r.system === system.name);
      if (!row) return "";
      if (row.failure) return row.failure.startsWith("unavailable") ? "unavailable" : "failed";
      return `${figure(row)}${row.ratio === undefined ? "" : ` (${row.ratio.toFixed(2)}x limit)`}${row.lost ? `, ${row.lost} lost` : ""}`;
    };
    const others = rows.filter((r) => r.kind === "peer" && !r.failure && r.promised !== "in redis" && !named.some((system) => system.name === r.system));
    const best = inMs(workload) ? others.sort((a, b) => (a.ms ?? Infinity) - (b.ms ?? Infinity))[0] : others.sort((a, b) => (b.opsPerSecond ?? 0) - (a.opsPerSecond ?? 0))[0];
    const bestText = best ? `${best.system} (${best.promised}): ${figure(best)}${best.lost ? `, ${best.lost} lost` : ""}` : "";
    lines.push(`| ${title} | ${shown.map(show).join(" | ")} | ${bestText} | ${named.map(show).join(" | ")} | ${show(aiokvRedis)} | ${show(keyvRedis)} |`);
  }
  lines.push("", "Targets of the journal (issue 12), in this run:", "", "| target | measured | met |", "| --- | --- | --- |");
  for (const target of targets(report)) lines.push(`| ${target.target} | ${target.measured} | ${verdict(target)} |`);
  return `${lines.join("\n")}\n`;
}

/** The chart's colour of each kind of system. */
const colours: Record<Kind, string> = { aiokv: "#2563eb", peer: "#ea580c", limit: "#9ca3af" };

const escapeXml = (text: string): string => text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");

/** Horizontal bars of speed per workload (log scale), aiokv in blue, peers in orange, limits in grey. */
export function chart(report: Report): string {
  const width = 900;
  const left = 230;
  const barHeight = 14;
  const panels = report.results.filter((r) => !heapOnly(r.workload) && r.workload !== "heapAfterSets");
  let y = 40;
  const parts: string[] = [];
  for (const { workload, title, rows } of panels) {
    parts.push(`<text x="10" y="${y}" font-weight="bold">${escapeXml(title)}</text>`);
    y += 8;
    const speeds = rows.map((r) => (inMs(workload) ? (r.ms ? 1000 / r.ms : 0) : (r.opsPerSecond ?? 0)));
    const max = Math.log10(Math.max(...speeds, 10));
    for (const [i, row] of rows.entries()) {
      const speed = speeds[i] ?? 0;
      const length = speed > 1 ? ((width - left - 150) * Math.log10(speed)) / max : 1;
      const label = row.failure ? row.failure : inMs(workload) ? `${row.ms?.toFixed(1)} ms` : `${rate(row.opsPerSecond)}/s${row.lost ? `, ${row.lost} lost` : ""}`;
      parts.push(
        `<text x="${left - 6}" y="${y + barHeight - 3}" text-anchor="end">${escapeXml(row.system)}</text>`,
        `<rect x="${left}" y="${y}" width="${length.toFixed(1)}" height="${barHeight - 2}" fill="${colours[row.kind]}"/>`,
        `<text x="${left + length + 4}" y="${y + barHeight - 3}">${escapeXml(label)}</text>`,
      );
      y += barHeight;
    }
    y += 26;
  }
  const header = `aiokv and its peers: speed (log scale), ${report.date.slice(0, 10)}, ${report.machine.cores} cores, Node ${report.machine.node}`;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${y}" font-family="sans-serif" font-size="11">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="10" y="20" font-size="13" font-weight="bold">${escapeXml(header)}</text>`,
    ...parts,
    "</svg>",
    "",
  ].join("\n");
}

/** One performance target of the journal (issue 12), as measured in this run. */
export interface Target {
  target: string;
  measured: string;
  /** `undefined` when this run could not measure it (a row missing, failed or unavailable, a workload skipped). */
  met: boolean | undefined;
}

const verdict = (target: Target): string => (target.met === undefined ? "not measured" : target.met ? "met" : "not met");

/** The targets as lines for the terminal. */
export function targetLines(list: Target[]): string[] {
  const width = Math.max(...list.map((target) => target.target.length));
  return ["Targets of the journal (issue 12), in this run:", ...list.map((target) => `${verdict(target).padEnd(12)}  ${target.target.padEnd(width)}  ${target.measured}`)];
}

/**
 * Each performance target of issue 12, as a ratio inside this run and whether it is met. The
 * journal is `aiokv (journal, sync)` unless a target names its no-sync variant.
 */
export function targets({ counts, results }: Results): Target[] {
  const { aiokvJournal: journal, aiokvJournalNoSync: journalNoSync, aiokvSync, sqliteFull, lmdb, nodePersist, unstorage, journalSynced, readParse } = systems;
  const row = (workload: Workload, system: System): Row | undefined => {
    const found = results.find((r) => r.workload === workload)?.rows.find((r) => r.system === system.name);
    return found && !found.failure ? found : undefined;
  };
  const speed = (r: Row): string => `${rate(r.opsPerSecond)}/s`;
  const missing = (...names: Array<[Workload, System]>): string => {
    const absent = names.filter(([workload, system]) => row(workload, system)?.opsPerSecond === undefined && row(workload, system)?.heapBytes === undefined);
    const why = (workload: Workload, system: System): string => {
      const ran = results.find((r) => r.workload === workload);
      return ran ? (ran.rows.find((r) => r.system === system.name)?.failure ?? "no row") : "not run";
    };
    return `no figure for ${absent.map(([workload, system]) => `${system.name} in ${workload} (${why(workload, system)})`).join(", ")}`;
  };
  const list: Target[] = [];

  // 1. Sequential small synced sets.
  const seq = row("sequential", journal);
  const seqSqlite = row("sequential", sqliteFull);
  const seqLimit = row("sequential", journalSynced);
  list.push(
    seq?.opsPerSecond && seqSqlite?.opsPerSecond
      ? {
          target: `journal (sync), ${counts.sequential} sequential small sets: at least SQLite FULL's rate`,
          measured: `${speed(seq)} against ${speed(seqSqlite)}: ${(seq.opsPerSecond / seqSqlite.opsPerSecond).toFixed(2)}x its rate`,
          met: seq.opsPerSecond >= seqSqlite.opsPerSecond,
        }
      : { target: `journal (sync), ${counts.sequential} sequential small sets: at least SQLite FULL's rate`, measured: missing(["sequential", journal], ["sequential", sqliteFull]), met: undefined },
    seq?.opsPerSecond && seqLimit?.opsPerSecond
      ? {
          target: `journal (sync), ${counts.sequential} sequential small sets: within 1.3x the journal limit's time`,
          measured: `${speed(seq)} against ${speed(seqLimit)}: ${(seqLimit.opsPerSecond / seq.opsPerSecond).toFixed(2)}x its time`,
          met: seqLimit.opsPerSecond / seq.opsPerSecond <= 1.3,
        }
      : { target: `journal (sync), ${counts.sequential} sequential small sets: within 1.3x the journal limit's time`, measured: missing(["sequential", journal], ["sequential", journalSynced]), met: undefined },
  );

  // 2. Sets into prefilled stores, against the same sets into an empty store, and against the one-file-per-key stores.
  // A smoke run has no 100,000-key store (hugeStore 0): its targets are "not measured".
  for (const [workload, keys] of [["bigStore", counts.bigStore], ["hugeStore", counts.hugeStore || 100_000]] as const) {
    const store = `${counts.bigSets} sets into a ${keys.toLocaleString("en-US")}-key store`;
    for (const system of [journal, journalNoSync]) {
      const into = row(workload, system);
      const empty = row("emptyStore", system);
      const target = `${system.name}, ${store}: within 20% of its rate into an empty store`;
      // The first set after an open may do once what a store's size costs: shown apart.
      const rest =
        into?.restPerSecond && empty?.restPerSecond && into.firstMs !== undefined && empty.firstMs !== undefined
          ? `; first set ${into.firstMs.toFixed(1)} ms against ${empty.firstMs.toFixed(1)} ms, the sets after it ${rate(into.restPerSecond)}/s against ${rate(empty.restPerSecond)}/s: ${(into.restPerSecond / empty.restPerSecond).toFixed(2)}x`
          : "";
      list.push(
        into?.opsPerSecond && empty?.opsPerSecond
          ? { target, measured: `${speed(into)} against ${speed(empty)}: ${(into.opsPerSecond / empty.opsPerSecond).toFixed(2)}x${rest}`, met: into.opsPerSecond >= 0.8 * empty.opsPerSecond }
          : { target, measured: missing([workload, system], ["emptyStore", system]), met: undefined },
      );
    }
    const into = row(workload, journal);
    const peers = [nodePersist, unstorage].map((system) => row(workload, system));
    const target = `journal (sync), ${store}: ahead of node-persist and unstorage (unsynced)`;
    const fastest = Math.max(...peers.map((peer) => peer?.opsPerSecond ?? 0));
    list.push(
      into?.opsPerSecond && peers.every((peer) => peer?.opsPerSecond)
        ? {
            target,
            measured: `${speed(into)} against ${peers.map((peer) => `${peer?.system} ${speed(peer as Row)}`).join(", ")}: ${(into.opsPerSecond / fastest).toFixed(2)}x the faster`,
            met: into.opsPerSecond > fastest,
          }
        : { target, measured: missing([workload, journal], [workload, nodePersist], [workload, unstorage]), met: undefined },
    );
  }

  // 3. Concurrent sets.
  const burst = row("concurrent", journal);
  const burstLmdb = row("concurrent", lmdb);
  const burstTarget = `journal (sync), bursts of ${counts.concurrent} concurrent sets: ahead of lmdb`;
  list.push(
    burst?.opsPerSecond && burstLmdb?.opsPerSecond
      ? { target: burstTarget, measured: `${speed(burst)} against ${speed(burstLmdb)}: ${(burst.opsPerSecond / burstLmdb.opsPerSecond).toFixed(2)}x`, met: burst.opsPerSecond > burstLmdb.opsPerSecond }
      : { target: burstTarget, measured: missing(["concurrent", journal], ["concurrent", lmdb]), met: undefined },
  );
  const lossTarget = `journal, bursts of ${counts.concurrent} concurrent sets (and the trickle): 0 lost after a reopen`;
  const losses = (["concurrent", "trickle"] as const).flatMap((workload) => [journal, journalNoSync].map((system) => ({ workload, system, found: row(workload, system) })));
  list.push(
    losses.every(({ found }) => found?.lost !== undefined)
      ? { target: lossTarget, measured: losses.map(({ workload, system, found }) => `${system.name} ${workload}: ${found?.lost} lost`).join(", "), met: losses.every(({ found }) => found?.lost === 0) }
      : { target: lossTarget, measured: missing(...losses.map(({ workload, system }) => [workload, system] as [Workload, System])), met: undefined },
  );

  // 4. Cold open with a journal.
  const cold = row("coldJournal", journal);
  const coldLimit = row("coldJournal", readParse);
  const coldTarget = `journal, cold open of ${counts.coldStore.toLocaleString("en-US")} keys + ${counts.journalRecords.toLocaleString("en-US")} journal records: within 2x readFile + JSON.parse of the compacted file`;
  list.push(
    cold?.ms && coldLimit?.ms
      ? { target: coldTarget, measured: `${cold.ms.toFixed(1)} ms against ${coldLimit.ms.toFixed(1)} ms: ${(cold.ms / coldLimit.ms).toFixed(2)}x its time`, met: cold.ms <= 2 * coldLimit.ms }
      : { target: coldTarget, measured: missing(["coldJournal", journal], ["coldJournal", readParse]), met: undefined },
  );

  // 5. The journal's size against the document's, wherever a journal store was sampled (before close).
  const samples = results.flatMap(({ workload, rows }) => rows.flatMap((r) => (r.journal && !r.failure ? [{ workload, system: r.system, sample: r.journal }] : [])));
  const worst = (list: typeof samples): (typeof samples)[number] | undefined => [...list].sort((a, b) => journalRatio(b.sample) - journalRatio(a.sample))[0];
  const describe = (found: (typeof samples)[number]): string => `${journalText(found.sample)} (${found.system}, ${found.workload})`;
  const all = worst(samples);
  list.push(
    all
      ? { target: "journal bytes never more than about 2x the document's: largest seen", measured: describe(all), met: journalRatio(all.sample) <= 2 }
      : { target: "journal bytes never more than about 2x the document's: largest seen", measured: "no journal store sampled", met: undefined },
  );
  // The compaction rule's floor (64 KiB) lets a small document's journal outgrow it many times: shown apart.
  const large = worst(samples.filter(({ sample }) => sample.documentBytes >= 64 * 1024));
  list.push(
    large
      ? { target: "the same, among documents of 64 KiB or more (the compaction floor)", measured: describe(large), met: journalRatio(large.sample) <= 2 }
      : { target: "the same, among documents of 64 KiB or more (the compaction floor)", measured: "no such document sampled", met: undefined },
  );

  // 6. Heap after many sets.
  const heap = row("heapAfterSets", journal);
  const heapOff = row("heapAfterSets", aiokvSync);
  const heapTarget = `heap after ${counts.heapSets.toLocaleString("en-US")} sets into a ${counts.bigStore.toLocaleString("en-US")}-key store: journal within 1.5x of no journal`;
  list.push(
    heap?.heapBytes !== undefined && heapOff?.heapBytes
      ? { target: heapTarget, measured: `${kib(heap.heapBytes)} against ${kib(heapOff.heapBytes)}: ${(heap.heapBytes / heapOff.heapBytes).toFixed(2)}x`, met: heap.heapBytes <= 1.5 * heapOff.heapBytes }
      : { target: heapTarget, measured: missing(["heapAfterSets", journal], ["heapAfterSets", aiokvSync]), met: undefined },
  );

  // 7. Journal off against an earlier main (pnpm bench --baseline <ref>): every workload's speed,
  // today's over the baseline's; "slower" is taken as below 0.9x, the noise of one shared machine.
  const offTarget = "journal off: no workload slower than main before the journal (below 0.9x), in the same run";
  const pairs = results.flatMap(({ workload, rows }) =>
    heapOnly(workload) || workload === "heapAfterSets"
      ? []
      : [aiokvSync, systems.aiokvNoSync].flatMap((today) => {
          const now = rows.find((r) => r.system === today.name && !r.failure);
          const then = rows.find((r) => r.system.startsWith(`${today.name.slice(0, -1)}, `) && !r.failure);
          if (!now || !then) return [];
          const ratio = inMs(workload) ? (then.ms ?? NaN) / (now.ms ?? NaN) : (now.opsPerSecond ?? NaN) / (then.opsPerSecond ?? NaN);
          return [{ workload, today: today.name, then: then.system, ratio }];
        }),
  );
  const slowest = [...pairs].sort((a, b) => a.ratio - b.ratio)[0];
  list.push(
    slowest
      ? {
          target: offTarget,
          measured: `slowest: ${slowest.today} in ${slowest.workload} at ${slowest.ratio.toFixed(2)}x ${slowest.then}'s speed; ${pairs.filter((p) => p.ratio < 0.9).length} of ${pairs.length} below 0.9x`,
          met: pairs.every((p) => p.ratio >= 0.9),
        }
      : { target: offTarget, measured: "no baseline in this run (pnpm bench --baseline <ref before the journal>)", met: undefined },
  );
  return list;
}
