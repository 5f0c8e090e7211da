//! The plausibility check (`imaging::plausibility`) passes the engine's own frames: every rule
//! stays silent on them except "no signal" on a frame the engine drew entirely empty.

use imaging::plausibility::{Problem, check};
use synthscope_synth::dataset::generate_saxs;
use synthscope_synth::scattering::SaxsConfig;

#[test]
fn engine_frames_are_plausible() {
    let config = SaxsConfig::default();
    let (mut judged, mut empty) = (0, 0);
    for index in 0..240 {
        let sample = generate_saxs(&config, 9301, index).expect("engine frame");
        let frame = sample.image.counts.map(|v| v as f32);
        let verdict = check(&frame, Some(f64::from(u32::MAX)));
        match &verdict.problems[..] {
            [] => judged += 1,
            [Problem::NoSignal { .. }] => {
                let first = frame.pixels()[0];
                assert!(frame.pixels().iter().all(|&v| v == first));
                empty += 1;
            }
            other => panic!("engine frame {index} flagged: {other:?}"),
        }
    }
    // A few beam-off-image frames are drawn empty; they are not what this test is about.
    assert!(judged >= 230, "{judged} judged, {empty} empty");
}
