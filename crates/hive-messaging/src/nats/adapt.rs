//! Adaptive compression: the writer picks the zstd level frame by frame
//! from what holds it back. When messages wait and compressing takes
//! longer than handing frames to the connection, CPU is what is scarce: one
//! level faster, down to the floor. When the connection is what waits, or
//! nothing is waiting, one level smaller, up to the configured level.

use std::time::Duration;

use crate::wire::Codec;

/// The level to encode the next frame at.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Adaptive {
    level: i32,
    best: i32,
    floor: i32,
}

impl Adaptive {
    /// Starts at `best`, the configured level; only zstd adapts.
    pub(crate) fn new(codec: Codec, best: i32, floor: i32) -> Self {
        let zstd = matches!(codec, Codec::Zstd | Codec::ZstdDictionary);
        Adaptive {
            level: best,
            best,
            floor: if zstd { floor.min(best) } else { best },
        }
    }

    /// The level after a frame that took `encoding` to compress and
    /// `sending` waiting for the connection, with `backlog` when more
    /// messages were already waiting.
    pub(crate) fn next(&mut self, encoding: Duration, sending: Duration, backlog: bool) -> i32 {
        let step = if backlog && encoding > sending { -1 } else { 1 };
        let mut level = self.level + step;
        if level == 0 {
            level += step; // zstd reads level 0 as its default (3)
        }
        if (self.floor..=self.best).contains(&level) {
            self.level = level;
        }
        self.level
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn steps_down_while_compression_holds_a_backlog_back_and_up_when_it_does_not() {
        let mut a = Adaptive::new(Codec::Zstd, 3, -3);
        let down: Vec<i32> = (0..8).map(|_| a.next(5 * MS, MS, true)).collect();
        assert_eq!(down, [2, 1, -1, -2, -3, -3, -3, -3]);
        // The connection is the bottleneck: compress harder.
        assert_eq!(a.next(MS, 5 * MS, true), -2);
        // Nothing waiting: back toward the configured level.
        let up: Vec<i32> = (0..6).map(|_| a.next(5 * MS, MS, false)).collect();
        assert_eq!(up, [-1, 1, 2, 3, 3, 3]);
    }

    #[test]
    fn gzip_keeps_its_level() {
        let mut a = Adaptive::new(Codec::Gzip, 6, -3);
        assert_eq!(a.next(5 * MS, MS, true), 6);
    }
}
