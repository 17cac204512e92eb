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
// Each currency's minor digits (ISO 4217), from the server's schema (x-minor-digits).
let DIGITS = {};

export function setMinorDigits(table) {
  DIGITS = table ?? {};
}

export function minorDigits(currency) {
  return DIGITS[(currency || "USD").toUpperCase()] ?? 2;
}

function grouped(minor, digits) {
  const abs = Math.abs(Math.round(minor));
  const scale = 10 ** digits;
  const major = Math.floor(abs / scale).toLocaleString("en-US");
  return digits ? `${major}.${String(abs % scale).padStart(digits, "0")}` : major;
}

/** Minor units to people's money, as core/money.py format_money: 123456 -> $1,234.56. */
export function formatMoney(minor, currency = "USD") {
  if (minor === null || minor === undefined) return "";
  const symbol = SYMBOLS[currency] ?? currency + " ";
  return `${minor < 0 ? "-" : ""}${symbol}${grouped(minor, minorDigits(currency))}`;
}

export class InputError extends Error {}

/** A plain amount in major units (``1500``, ``1,500.50``, ``-5``) to exact minor units.
 * The page takes only plain numbers; what it refuses, it refuses in core/money.py's
 * words (parse_money). */
export function parseMoney(text, currency = "USD") {
  const digits = minorDigits(currency);
  const raw = String(text).trim();
  const quoted = pyRepr(String(text));
  const shape = /^([+-]?)(\d{1,3}(?:,\d{3})+|\d+)(?:\.(\d+))?$/.exec(raw);
  if (!shape) {
    const big = grouped(1500 * 10 ** digits, digits);
    const sign = SYMBOLS[currency];
    const marked = sign ? `${sign}${big}` : `1500 ${currency}`;
    throw new InputError(`${quoted} is not an amount of money: write it in ${currency} major units, like 1500, ${big} or ${marked}`);
  }
  const [, sign, whole, fraction = ""] = shape;
  if (fraction.replace(/0+$/, "").length > digits) {
    const cut = fraction.slice(0, digits);
    const low = `${whole.replace(/,/g, "")}${digits ? "." + cut : ""}`;
    const step = 10 ** -digits;
    const high = (Number(low) + step).toFixed(digits);
    const which = digits === 0 ? `${currency} has no minor unit` : `${currency} has ${digits} decimals`;
    throw new InputError(`${quoted} has too many decimals (${which}): write ${sign === "-" ? "-" : ""}${low} or ${sign === "-" ? "-" : ""}${high}`);
  }
  const units = BigInt(whole.replace(/,/g, "") + fraction.padEnd(digits, "0").slice(0, digits));
  if (units > 2n ** 53n - 1n) throw new InputError(`${quoted} is too large an amount (at most ${formatMoney(2 ** 53 - 1, currency)})`);
  return (sign === "-" ? -1 : 1) * Number(units);
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

/** parseMoney for one field of an entity kind: a refusal names the field, as the CLI's
 * ("invalid talent.rate: '1,5' is not an amount of money: ..."). */
export function parseMoneyField(kind, field, text, currency) {
  try {
    return parseMoney(text, currency);
  } catch (error) {
    if (error instanceof InputError) throw new InputError(`invalid ${kind}.${field}: ${error.message}`);
    throw error;
  }
}
