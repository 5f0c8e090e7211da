//! Lattice peak series computed from the lattice, not from a table.

use serde::{Deserialize, Serialize};

/// Lattices the simulator knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LatticeKind {
    /// Stacked layers: q_h = h·q₁.
    Lamellar,
    /// Body-centred cubic: reflections with h+k+l even.
    Bcc,
    /// Face-centred cubic: h, k, l all odd or all even.
    Fcc,
    /// 2-D hexagonal (cylinders): |G|² ∝ h² + hk + k².
    Hexagonal,
}

impl LatticeKind {
    /// All four kinds, in tag order.
    pub const ALL: [LatticeKind; 4] = [
        LatticeKind::Bcc,
        LatticeKind::Fcc,
        LatticeKind::Hexagonal,
        LatticeKind::Lamellar,
    ];

    /// Tag name of the lattice.
    pub fn tag(self) -> &'static str {
        match self {
            LatticeKind::Lamellar => "lamellar",
            LatticeKind::Bcc => "BCC",
            LatticeKind::Fcc => "FCC",
            LatticeKind::Hexagonal => "hexagonal",
        }
    }
}

/// One reflection: its position relative to the first and how many lattice vectors share it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Reflection {
    /// q_i / q₁.
    pub ratio: f64,
    /// Number of reciprocal-lattice vectors of this length (the multiplicity).
    pub multiplicity: u32,
}

/// The first `count` distinct reflections of `kind`, in increasing q.
///
/// Enumerates reciprocal-lattice vectors, keeps those the structure factor allows and groups
/// them by length; ratios are √(s/s₁) with s the squared index sum.
pub fn reflections(kind: LatticeKind, count: usize) -> Vec<Reflection> {
    let mut by_s: std::collections::BTreeMap<i64, u32> = std::collections::BTreeMap::new();
    let n: i64 = 12;
    match kind {
        LatticeKind::Lamellar => {
            for h in 1..=count as i64 {
                by_s.insert(h * h, 2);
            }
        }
        LatticeKind::Hexagonal => {
            for h in -n..=n {
                for k in -n..=n {
                    let s = h * h + h * k + k * k;
                    if s > 0 {
                        *by_s.entry(s).or_default() += 1;
                    }
                }
            }
        }
        LatticeKind::Bcc | LatticeKind::Fcc => {
            for h in -n..=n {
                for k in -n..=n {
                    for l in -n..=n {
                        let s = h * h + k * k + l * l;
                        let allowed = match kind {
                            LatticeKind::Bcc => (h + k + l).rem_euclid(2) == 0,
                            _ => {
                                let odd = [h, k, l].iter().filter(|v| v.rem_euclid(2) == 1).count();
                                odd == 0 || odd == 3
                            }
                        };
                        if s > 0 && allowed {
                            *by_s.entry(s).or_default() += 1;
                        }
                    }
                }
            }
        }
    }
    // Shells near the enumeration limit are incomplete; n = 12 keeps the first 30+ exact.
    let mut it = by_s.into_iter().take(count);
    let Some((s1, m1)) = it.next() else {
        return Vec::new();
    };
    std::iter::once(Reflection {
        ratio: 1.0,
        multiplicity: m1,
    })
    .chain(it.map(|(s, m)| Reflection {
        ratio: (s as f64 / s1 as f64).sqrt(),
        multiplicity: m,
    }))
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ratios(kind: LatticeKind, n: usize) -> Vec<f64> {
        reflections(kind, n).iter().map(|r| r.ratio).collect()
    }

    fn assert_ratios(kind: LatticeKind, want_squared: &[f64]) {
        let got = ratios(kind, want_squared.len());
        for (g, w) in got.iter().zip(want_squared) {
            assert!((g - w.sqrt()).abs() < 1e-12, "{kind:?}: {got:?}");
        }
    }

    #[test]
    fn peak_ratios_follow_the_selection_rules() {
        assert_ratios(LatticeKind::Lamellar, &[1.0, 4.0, 9.0, 16.0]);
        assert_ratios(LatticeKind::Bcc, &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]);
        // FCC: s = 3, 4, 8, 11, 12, 16, 19, 20 → ratios √(s/3).
        assert_ratios(
            LatticeKind::Fcc,
            &[
                1.0,
                4.0 / 3.0,
                8.0 / 3.0,
                11.0 / 3.0,
                4.0,
                16.0 / 3.0,
                19.0 / 3.0,
                20.0 / 3.0,
            ],
        );
        assert_ratios(
            LatticeKind::Hexagonal,
            &[1.0, 3.0, 4.0, 7.0, 9.0, 12.0, 13.0],
        );
    }

    #[test]
    fn multiplicities_match_crystallography() {
        // BCC {110}: 12 vectors, {200}: 6; FCC {111}: 8, {200}: 6; hexagonal {10}: 6.
        let bcc = reflections(LatticeKind::Bcc, 2);
        assert_eq!((bcc[0].multiplicity, bcc[1].multiplicity), (12, 6));
        let fcc = reflections(LatticeKind::Fcc, 2);
        assert_eq!((fcc[0].multiplicity, fcc[1].multiplicity), (8, 6));
        assert_eq!(reflections(LatticeKind::Hexagonal, 1)[0].multiplicity, 6);
    }
}
