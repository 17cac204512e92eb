// Small helpers shared by the views: ids, money, text folding, dates.

const CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/** A ULID (48-bit milliseconds + 80 random bits), as castroom makes them. */
export function newId() {
  let time = Date.now();
  let out = "";
  for (let i = 0; i < 10; i++) {
    out = CROCKFORD[time % 32] + out;
    time = Math.floor(time / 32);
  }
  const random = crypto.getRandomValues(new Uint8Array(16));
  for (let i = 0; i < 16; i++) out += CROCKFORD[random[i] % 32];
  return out;
}

const SYMBOLS = { USD: "$", EUR: "€", GBP: "£", CAD: "CA$", AUD: "A$", JPY: "¥" };
const ZERO_DECIMAL = new Set(["JPY", "KRW", "ISK", "CLP", "VND"]);

export function minorDigits(currency) {
  return ZERO_DECIMAL.has((currency || "USD").toUpperCase()) ? 0 : 2;
}

/** Minor units to people's money, as core/money.py format_money: 123456 -> $1,234.56. */
export function formatMoney(minor, currency = "USD") {
  if (minor === null || minor === undefined) return "";
  const sign = minor < 0 ? "-" : "";
  const abs = Math.abs(Math.round(minor));
  const symbol = SYMBOLS[currency] ?? currency + " ";
  const digits = minorDigits(currency);
  if (digits === 0) return `${sign}${symbol}${abs.toLocaleString("en-US")}`;
  const major = Math.floor(abs / 100).toLocaleString("en-US");
  return `${sign}${symbol}${major}.${String(abs % 100).padStart(2, "0")}`;
}

export class InputError extends Error {}

/** People's major units to exact minor units, refusing what core/money.py parse_money
 * refuses, in its words. */
export function parseMoney(text, currency = "USD") {
  let raw = String(text).replace(/[\s,_]/g, "");
  const marks = [...new Set([...Object.values(SYMBOLS), currency.toUpperCase(), ...Object.keys(SYMBOLS)])];
  marks.sort((a, b) => b.length - a.length);
  for (const mark of marks) raw = raw.split(mark).join("");
  const quoted = pyRepr(String(text));
  if (!/^[+-]?\d+(\.\d+)?$/.test(raw)) throw new InputError(`not an amount of money: ${quoted}`);
  const [whole, fraction = ""] = raw.replace(/^\+/, "").split(".");
  const digits = minorDigits(currency);
  if (fraction.replace(/0+$/, "").length > digits) {
    throw new InputError(`${quoted} has more decimals than ${currency} allows (${digits})`);
  }
  const negative = whole.startsWith("-");
  const units = BigInt(whole.replace("-", "") + fraction.padEnd(digits, "0").slice(0, digits));
  if (units > 2n ** 53n - 1n) throw new InputError(`${quoted} is too large an amount`);
  return (negative ? -1 : 1) * Number(units);
}

/** Python's repr of a string, as the CLI's messages quote what people typed. */
export function pyRepr(text) {
  return text.includes("'") && !text.includes('"') ? `"${text}"` : `'${text.replace(/'/g, "\\'")}'`;
}

/** Case- and accent-insensitive text for search: "Zoë" and "zoe" match. */
export function fold(text) {
  return String(text ?? "")
    .normalize("NFKD")
    .replace(/\p{M}/gu, "")
    .toLocaleLowerCase();
}

export function shortDate(iso) {
  if (!iso) return "";
  const date = new Date(iso + "T00:00:00");
  return date.toLocaleDateString("en-GB", { weekday: "short", day: "numeric", month: "short" });
}

export function timeAgo(seconds) {
  const when = new Date(seconds * 1000);
  return when.toLocaleString("en-GB", { dateStyle: "medium", timeStyle: "medium" });
}

export function initials(name) {
  return String(name || "?")
    .split(/\s+/)
    .filter(Boolean)
    .slice(0, 2)
    .map((word) => word[0].toUpperCase())
    .join("");
}

/** A stable colour for a member's presence dot. */
export function colourFor(name) {
  let hash = 0;
  for (const ch of String(name)) hash = (hash * 31 + ch.charCodeAt(0)) | 0;
  return `hsl(${Math.abs(hash) % 360} 60% 45%)`;
}
