// Seeded randomness for the canary simulation: a small PRNG (xoshiro128**, seeded through
// splitmix32) and exact binomial and multinomial draws, so every figure is reproducible.

/** 32-bit mix of a few integers into one seed (splitmix32 finalizer over each). */
export function seedOf (...parts: number[]): number {
  let h = 0x9e3779b9
  for (const p of parts) {
    h = (h + Math.imul(p | 0, 0x85ebca6b) + 0x9e3779b9) | 0
    h = Math.imul(h ^ (h >>> 16), 0x21f0aaad)
    h = Math.imul(h ^ (h >>> 15), 0x735a2d97)
    h ^= h >>> 15
  }
  return h >>> 0
}

export class Rng {
  #a: number
  #b: number
  #c: number
  #d: number

  constructor (seed: number) {
    let s = seed >>> 0
    const next = () => {
      s = (s + 0x9e3779b9) | 0
      let z = s
      z = Math.imul(z ^ (z >>> 16), 0x21f0aaad)
      z = Math.imul(z ^ (z >>> 15), 0x735a2d97)
      return (z ^ (z >>> 15)) >>> 0
    }
    this.#a = next()
    this.#b = next()
    this.#c = next()
    this.#d = next()
  }

  /** Uniform on (0, 1), 32 bits. */
  uniform (): number {
    const r = Math.imul(rotl(Math.imul(this.#b, 5), 7), 9)
    const t = this.#b << 9
    this.#c ^= this.#a
    this.#d ^= this.#b
    this.#b ^= this.#c
    this.#a ^= this.#d
    this.#c ^= t
    this.#d = rotl(this.#d, 11)
    return ((r >>> 0) + 0.5) / 4294967296
  }

  /** Binomial(n, p), exact: inversion from 0 for small means, from the mode otherwise. */
  binomial (n: number, p: number): number {
    if (n <= 0 || p <= 0) return 0
    if (p >= 1) return n
    if (p > 0.5) return n - this.binomial(n, 1 - p)
    const q = 1 - p
    if (n * p < 20) {
      // P(0) = q^n, P(k+1) = P(k) (n − k) p / ((k + 1) q)
      let u = this.uniform()
      let f = Math.exp(n * Math.log1p(-p))
      for (let k = 0; k < n; k++) {
        if (u <= f) return k
        u -= f
        f *= ((n - k) * p) / ((k + 1) * q)
      }
      return n
    }
    const mode = Math.min(n, Math.floor((n + 1) * p))
    const fm = Math.exp(logBinomialPmf(mode, n, p))
    let u = this.uniform()
    if (u <= fm) return mode
    u -= fm
    let lo = mode
    let hi = mode
    let flo = fm
    let fhi = fm
    while (lo > 0 || hi < n) {
      if (lo > 0) {
        flo *= (lo * q) / ((n - lo + 1) * p)
        lo--
        if (u <= flo) return lo
        u -= flo
      }
      if (hi < n) {
        fhi *= ((n - hi) * p) / ((hi + 1) * q)
        hi++
        if (u <= fhi) return hi
        u -= fhi
      }
    }
    return mode // rounding left a sliver of probability: the mode
  }

  /** Multinomial(n, probs) by conditional binomials; `probs` sum to 1. */
  multinomial (n: number, probs: readonly number[]): number[] {
    const out: number[] = []
    let left = n
    let mass = 1
    for (let i = 0; i < probs.length; i++) {
      const p = probs[i]!
      const k = i === probs.length - 1 ? left : left === 0 ? 0 : this.binomial(left, Math.min(1, Math.max(0, p / mass)))
      out.push(k)
      left -= k
      mass -= p
    }
    return out
  }
}

function rotl (x: number, k: number): number {
  return (x << k) | (x >>> (32 - k))
}

const LANCZOS = [0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059, 12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7]

/** ln Γ(x) for x ≥ 0.5 (Lanczos, g = 7). */
export function logGamma (x: number): number {
  const y = x - 1
  let a = LANCZOS[0]!
  for (let i = 1; i < 9; i++) a += LANCZOS[i]! / (y + i)
  const t = y + 7.5
  return 0.5 * Math.log(2 * Math.PI) + (y + 0.5) * Math.log(t) - t + Math.log(a)
}

export function logBinomialPmf (k: number, n: number, p: number): number {
  return logGamma(n + 1) - logGamma(k + 1) - logGamma(n - k + 1) + k * Math.log(p) + (n - k) * Math.log1p(-p)
}

/** Standard normal CDF (erfc by a Chebyshev fit, relative error < 1.2e-7). */
export function normalCdf (x: number): number {
  const z = Math.abs(x) / Math.SQRT2
  const t = 1 / (1 + 0.5 * z)
  const r = t * Math.exp(-z * z - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))))
  return x >= 0 ? 1 - r / 2 : r / 2
}
