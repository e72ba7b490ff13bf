/** Human sizes: "512M", "4G", "64GiB", "1.5g", "4096" (bytes). Binary units (K = 1024). */
const UNITS: Record<string, number> = { '': 1, B: 1, K: 2 ** 10, M: 2 ** 20, G: 2 ** 30, T: 2 ** 40 };

/** Parse a size; null when it is not one. */
export function parseSize(text: string): number | null {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(?:I?B)?\s*$/i.exec(text);
  if (!m) return null;
  const n = Number(m[1]) * UNITS[m[2]!.toUpperCase()]!;
  return Number.isFinite(n) ? Math.floor(n) : null;
}

export function formatSize(bytes: number): string {
  for (const [u, f] of [['GiB', 2 ** 30], ['MiB', 2 ** 20], ['KiB', 2 ** 10]] as const) {
    if (bytes >= f) return `${(bytes / f).toFixed(bytes % f ? 1 : 0)} ${u}`;
  }
  return `${bytes} B`;
}
