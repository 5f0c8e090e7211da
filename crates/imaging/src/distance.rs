//! Exact Euclidean distance transform of a binary mask (Felzenszwalb & Huttenlocher 2012): for
//! every pixel, the distance in pixels to the nearest pixel that is set. Linear in the number of
//! pixels: one pass of the 1-D lower envelope of parabolas along the columns, then along the
//! rows, on squared distances.

/// Distance in pixels from every pixel of a `width × height` row-major mask to the nearest set
/// pixel (0 on set pixels); `f32::INFINITY` everywhere when no pixel is set.
pub fn distance_to_set(mask: &[bool], width: usize, height: usize) -> Vec<f32> {
    assert_eq!(mask.len(), width * height, "mask and size disagree");
    // Squared distances, "infinite" off the set: large but finite so the envelope stays exact.
    let far = ((width + height) * (width + height)) as f64 * 4.0 + 1.0;
    let mut d: Vec<f64> = mask.iter().map(|&m| if m { 0.0 } else { far }).collect();
    let mut line = vec![0.0; width.max(height)];
    let mut out = vec![0.0; width.max(height)];
    let mut scratch = Envelope::new(width.max(height));
    for x in 0..width {
        for y in 0..height {
            line[y] = d[y * width + x];
        }
        scratch.transform(&line[..height], &mut out[..height]);
        for y in 0..height {
            d[y * width + x] = out[y];
        }
    }
    for y in 0..height {
        let row = &mut d[y * width..(y + 1) * width];
        line[..width].copy_from_slice(row);
        scratch.transform(&line[..width], &mut out[..width]);
        row.copy_from_slice(&out[..width]);
    }
    if mask.iter().any(|&m| m) {
        d.iter().map(|&v| v.sqrt() as f32).collect()
    } else {
        vec![f32::INFINITY; d.len()]
    }
}

/// Buffers of the 1-D transform: parabola vertices and the boundaries between them.
struct Envelope {
    vertex: Vec<usize>,
    bound: Vec<f64>,
}

impl Envelope {
    fn new(n: usize) -> Self {
        Self {
            vertex: vec![0; n],
            bound: vec![0.0; n + 1],
        }
    }

    /// `out[q] = min_p (q − p)² + f[p]`.
    fn transform(&mut self, f: &[f64], out: &mut [f64]) {
        let n = f.len();
        if n == 0 {
            return;
        }
        let (v, z) = (&mut self.vertex, &mut self.bound);
        let mut k = 0;
        v[0] = 0;
        z[0] = f64::NEG_INFINITY;
        z[1] = f64::INFINITY;
        // Squared distances are finite, so z[0] = −∞ stops the loop at the first parabola.
        let cross = |q: usize, p: usize| {
            ((f[q] + (q * q) as f64) - (f[p] + (p * p) as f64)) / (2 * (q - p)) as f64
        };
        for q in 1..n {
            // Where the parabola of q overtakes the last one kept; drop those it hides.
            let mut s = cross(q, v[k]);
            while s <= z[k] {
                k -= 1;
                s = cross(q, v[k]);
            }
            k += 1;
            v[k] = q;
            z[k] = s;
            z[k + 1] = f64::INFINITY;
        }
        let mut k = 0;
        for (q, o) in out.iter_mut().enumerate() {
            while z[k + 1] < q as f64 {
                k += 1;
            }
            let p = v[k];
            let dq = q as f64 - p as f64;
            *o = dq * dq + f[p];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn brute(mask: &[bool], w: usize, h: usize) -> Vec<f32> {
        let set: Vec<(usize, usize)> = (0..w * h)
            .filter(|&i| mask[i])
            .map(|i| (i % w, i / w))
            .collect();
        (0..w * h)
            .map(|i| {
                let (x, y) = (i % w, i / w);
                set.iter()
                    .map(|&(a, b)| {
                        let (dx, dy) = (a as f64 - x as f64, b as f64 - y as f64);
                        (dx * dx + dy * dy).sqrt()
                    })
                    .fold(f64::INFINITY, f64::min) as f32
            })
            .collect()
    }

    #[test]
    fn matches_brute_force_on_random_masks() {
        let mut state = 12345u64;
        for (w, h, density) in [(17, 11, 0.05), (32, 32, 0.01), (5, 40, 0.3), (1, 9, 0.2)] {
            let mask: Vec<bool> = (0..w * h)
                .map(|_| {
                    state = state
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    ((state >> 33) as f64 / (1u64 << 31) as f64) < density
                })
                .collect();
            if !mask.iter().any(|&m| m) {
                continue;
            }
            let got = distance_to_set(&mask, w, h);
            let want = brute(&mask, w, h);
            for (g, e) in got.iter().zip(&want) {
                assert!((g - e).abs() < 1e-5, "{w}×{h}: {g} vs {e}");
            }
        }
    }

    #[test]
    fn one_point_gives_the_euclidean_norm_and_an_empty_mask_infinity() {
        let mut mask = vec![false; 7 * 5];
        mask[2 * 7 + 3] = true;
        let d = distance_to_set(&mask, 7, 5);
        assert_eq!(d[2 * 7 + 3], 0.0);
        assert!((d[6] - (9.0f32 + 4.0).sqrt()).abs() < 1e-6);
        assert!(
            distance_to_set(&[false; 6], 3, 2)
                .iter()
                .all(|v| v.is_infinite())
        );
    }
}
