//! Writes valid frames of every codec into `fuzz/corpus/decode_frame/`, the
#![allow(clippy::print_stdout, clippy::indexing_slicing)] // an example prints and slices a fixed batch
//! starting corpus of the `decode_frame` fuzz target.
//!
//! `cargo run -p hive-messaging --features wire --example fuzz_seeds`

use hive_messaging::wire::{Control, Dictionary, EncoderConfig, FrameEncoder};
use hive_types::{AgentId, Message, MessageKind, Priority};

fn main() -> anyhow::Result<()> {
    let dir =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/decode_frame");
    std::fs::create_dir_all(&dir)?;
    let (a, b) = (AgentId::random(), AgentId::random());
    let batch: Vec<Message> = (0..12u32)
        .map(|i| {
            Message::builder(a, b)
                .kind(MessageKind::Custom(i as u16))
                .priority(Priority::ALL[(i % 4) as usize])
                .payload(
                    format!("{{\"i\":{i},\"text\":\"agents agree on plan {i}\"}}")
                        .repeat(i as usize + 1),
                )
                .build()
        })
        .collect();
    let dict = Dictionary::train(
        &batch.iter().cycle().take(200).cloned().collect::<Vec<_>>(),
        4096,
    )?;
    let configs = [
        ("none", EncoderConfig::uncompressed()),
        ("gzip", EncoderConfig::gzip()),
        (
            "zstd",
            EncoderConfig {
                threshold: 0,
                ..EncoderConfig::default()
            },
        ),
        ("dict", EncoderConfig::with_dictionary(dict)),
    ];
    for (name, config) in configs {
        let mut encoder = FrameEncoder::new(config)?;
        for n in [0usize, 1, 12] {
            let mut frame = Vec::new();
            encoder.encode_messages(&batch[..n], n as u64, &mut frame)?;
            std::fs::write(dir.join(format!("{name}-{n}")), &frame)?;
        }
    }
    let mut frame = Vec::new();
    FrameEncoder::new(EncoderConfig::default())?.encode_control(
        &[
            Control::Hello { version: 1 },
            Control::Hosts(a),
            Control::Ack(3),
        ],
        0,
        &mut frame,
    )?;
    std::fs::write(dir.join("control"), &frame)?;
    println!("seeds written to {}", dir.display());
    Ok(())
}
