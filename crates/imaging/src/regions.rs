//! Connected regions of pixels: the one flood fill behind grain labelling, the TEM generator's
//! grain check and the beamstop-shadow search.

/// Grows a 4-connected region from `seeds` (pixel indices, row-major, already part of it): each
/// neighbour `j` of a region pixel joins when `accept(j)` returns `true`. `accept` must remember
/// what it accepted (e.g. by labelling it) so that no pixel joins twice. Returns the region's
/// pixels, seeds first.
pub fn grow_4(
    width: usize,
    height: usize,
    seeds: &[usize],
    mut accept: impl FnMut(usize) -> bool,
) -> Vec<usize> {
    let mut region = seeds.to_vec();
    let mut next = 0;
    while let Some(&k) = region.get(next) {
        next += 1;
        let (x, y) = (k % width, k / width);
        let neighbours = [
            (x > 0).then(|| k - 1),
            (x + 1 < width).then(|| k + 1),
            (y > 0).then(|| k - width),
            (y + 1 < height).then(|| k + width),
        ];
        for j in neighbours.into_iter().flatten() {
            if accept(j) {
                region.push(j);
            }
        }
    }
    region
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fills_a_region_without_crossing_a_wall_or_diagonals() {
        // 5×3, a wall in column 2; (4, 0) touches the left part only diagonally.
        #[rustfmt::skip]
        let open = [
            true, true, false, false, true,
            true, true, false, true, false,
            true, false, false, true, true,
        ];
        let mut seen = [false; 15];
        seen[0] = true;
        let mut region = grow_4(5, 3, &[0], |j| {
            let take = open[j] && !seen[j];
            seen[j] |= take;
            take
        });
        region.sort_unstable();
        assert_eq!(region, vec![0, 1, 5, 6, 10]);
    }
}
