// Tables for the terminal, a summary for the README, and the SVG chart; all from the results.
import { systems, type Kind, type Promised, type System } from "./systems.js";
import type { Workload } from "./workloads.js";

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
  heapBytes?: number | undefined;
  fileBytes?: number | undefined;
  /** The limit this row is compared with, and how many times slower than it this row is. */
  limit?: string | undefined;
  ratio?: number;
}

interface Report {
  date: string;
  machine: { cpu: string; cores: number; node: string };
  results: Array<{ workload: Workload; title: string; rows: Row[] }>;
}

const rate = (n: number | undefined): string => (n === undefined ? "" : n >= 100 ? Math.round(n).toLocaleString("en-US") : n.toFixed(1));
const kib = (n: number | undefined): string => (n === undefined ? "" : `${Math.round(n / 1024).toLocaleString("en-US")} KiB`);

function cells(workload: Workload, row: Row): string[] {
  if (row.failure) return [row.system, row.promised, row.failure, "", "", "", row.note];
  const stall = row.stallMs === undefined ? "" : `${row.stallMs.toFixed(1)} ms`;
  const ratio = row.ratio === undefined ? "" : `${row.ratio.toFixed(2)}x`;
  if (workload === "memory") {
    const per = row.heapBytes !== undefined && row.fileBytes ? `${(row.heapBytes / row.fileBytes).toFixed(1)}x file` : "";
    return [row.system, row.promised, kib(row.heapBytes), kib(row.fileBytes), per, "", row.note];
  }
  const speed = workload === "cold" ? `${row.ms?.toFixed(1) ?? ""} ms` : `${rate(row.opsPerSecond)}/s`;
  const partial = row.ops !== undefined && workload !== "cold" && row.ops < 10 ? ` (${row.ops} done)` : "";
  return [row.system, row.promised, speed + partial, ratio, stall, row.lost === undefined ? "" : String(row.lost), row.note];
}

const headers = (workload: Workload): string[] =>
  workload === "memory"
    ? ["system", "promise", "heap held", "files", "heap / file", "", "note"]
    : ["system", "promise", workload === "cold" ? "time" : "speed", "x limit", "max stall", "lost", "note"];

/** A plain-text table for the terminal. */
export function table(workload: Workload, title: string, rows: Row[]): string {
  const lines = [headers(workload), ...rows.map((row) => cells(workload, row))];
  const widths = lines[0]?.map((_, i) => Math.max(...lines.map((line) => (line[i] ?? "").length))) ?? [];
  const format = (line: string[]): string => line.map((cell, i) => cell.padEnd(widths[i] ?? 0)).join("  ").trimEnd();
  return [`\n${title}`, format(lines[0] ?? []), widths.map((w) => "-".repeat(w)).join("  "), ...lines.slice(1).map(format)].join("\n");
}

/** The README's headline table: aiokv against its limit and against the fastest peer. */
export function summary(report: Report): string {
  const { aiokvSync, aiokvNoSync, aiokvRedis, keyvRedis } = systems;
  const lines = [
    `Measured ${report.date.slice(0, 10)} on ${report.machine.cores} cores (${report.machine.cpu}), Node ${report.machine.node}; \`pnpm bench\` for the full tables.`,
    "",
    `| workload | ${aiokvSync.name} | ${aiokvNoSync.name} | fastest file peer | ${aiokvRedis.name} | ${keyvRedis.name} |`,
    "| --- | --- | --- | --- | --- | --- |",
  ];
  for (const { workload, title, rows } of report.results) {
    if (workload === "memory") continue;
    const show = (system: System): string => {
      const row = rows.find((r) => r.system === system.name);
      if (!row || row.failure) return "";
      const speed = workload === "cold" ? `${row.ms?.toFixed(1)} ms` : `${rate(row.opsPerSecond)}/s`;
      return `${speed}${row.ratio === undefined ? "" : ` (${row.ratio.toFixed(2)}x limit)`}${row.lost ? `, ${row.lost} lost` : ""}`;
    };
    const peers = rows.filter((r) => r.kind === "peer" && !r.failure && r.promised !== "in redis");
    const best = workload === "cold" ? peers.sort((a, b) => (a.ms ?? Infinity) - (b.ms ?? Infinity))[0] : peers.sort((a, b) => (b.opsPerSecond ?? 0) - (a.opsPerSecond ?? 0))[0];
    const bestText = best ? `${best.system} (${best.promised}): ${workload === "cold" ? `${best.ms?.toFixed(1)} ms` : `${rate(best.opsPerSecond)}/s`}${best.lost ? `, ${best.lost} lost` : ""}` : "";
    lines.push(`| ${title} | ${show(aiokvSync)} | ${show(aiokvNoSync)} | ${bestText} | ${show(aiokvRedis)} | ${show(keyvRedis)} |`);
  }
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
  const panels = report.results.filter((r) => r.workload !== "memory");
  let y = 40;
  const parts: string[] = [];
  for (const { workload, title, rows } of panels) {
    parts.push(`<text x="10" y="${y}" font-weight="bold">${escapeXml(title)}</text>`);
    y += 8;
    const speeds = rows.map((r) => (workload === "cold" ? (r.ms ? 1000 / r.ms : 0) : (r.opsPerSecond ?? 0)));
    const max = Math.log10(Math.max(...speeds, 10));
    for (const [i, row] of rows.entries()) {
      const speed = speeds[i] ?? 0;
      const length = speed > 1 ? ((width - left - 150) * Math.log10(speed)) / max : 1;
      const label = row.failure ? row.failure : workload === "cold" ? `${row.ms?.toFixed(1)} ms` : `${rate(row.opsPerSecond)}/s${row.lost ? `, ${row.lost} lost` : ""}`;
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
