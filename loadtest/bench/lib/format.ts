/** How figures are printed in the tables of `npm run bench`: a dash for anything not measured. */
export const perSec = (n: number): string =>
  Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : '-'
export const ms = (n: number | null): string =>
  n !== null && Number.isFinite(n) ? (n < 10 ? n.toFixed(2) : n.toFixed(1)) : '-'
export const times = (n: number): string => (Number.isFinite(n) ? `${n.toFixed(2)}×` : '-')
export const percent = (n: number): string =>
  Number.isFinite(n) ? `${(n * 100).toFixed(n === 1 || n === 0 ? 0 : 1)}%` : '-'
export const fixed = (n: number, digits: number): string =>
  Number.isFinite(n) ? n.toFixed(digits) : '-'
