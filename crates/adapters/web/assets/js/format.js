// Numbers, sizes, durations and times as people read them.

const numbers = new Intl.NumberFormat(undefined);
const relative = new Intl.RelativeTimeFormat(undefined, { numeric: 'auto' });
const absolute = new Intl.DateTimeFormat(undefined, {
  year: 'numeric', month: 'short', day: 'numeric',
  hour: '2-digit', minute: '2-digit', second: '2-digit',
});

/** 12500 → "12,500"; null → "—". */
export const num = (n) => (n === null || n === undefined ? '—' : numbers.format(n));

/** A whole percentage of `part` in `total`. */
export function percent(part, total) {
  if (!total) return 0;
  return Math.min(100, Math.floor((part / total) * 100));
}

/** 45200 → "45 s", 192000 → "3 min 12 s", 7380000 → "2 h 3 min". */
export function duration(ms) {
  if (ms === null || ms === undefined) return '—';
  const s = Math.floor(ms / 1000);
  if (s < 1) return `${ms} ms`;
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${s % 60} s`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h} h ${m % 60} min`;
  return `${Math.floor(h / 24)} d ${h % 24} h`;
}

/** "3 minutes ago", "in 2 hours", "now". */
export function ago(iso, now = Date.now()) {
  if (!iso) return '—';
  const diff = (new Date(iso).getTime() - now) / 1000;
  const abs = Math.abs(diff);
  if (abs < 10) return 'just now';
  if (abs < 90) return relative.format(Math.round(diff), 'second');
  if (abs < 90 * 60) return relative.format(Math.round(diff / 60), 'minute');
  if (abs < 36 * 3600) return relative.format(Math.round(diff / 3600), 'hour');
  return relative.format(Math.round(diff / 86400), 'day');
}

/** "Dec 1, 2026, 09:03:04 PM" in the reader's locale and time zone. */
export const at = (iso) => (iso ? absolute.format(new Date(iso)) : '—');

/** 1536 → "1.5 KiB". */
export function bytes(n) {
  if (n === null || n === undefined) return '—';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i += 1;
  }
  return i === 0 ? `${num(v)} B` : `${v.toFixed(1)} ${units[i]}`;
}

/** "completed_with_errors" → "completed with errors". */
export const words = (s) => String(s || '').replaceAll('_', ' ');
