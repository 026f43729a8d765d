//! `Wake`: what an applied write means for the long polls waiting on an ISPB, so the
//! server wakes as few of them as can make progress.

/// Why an ISPB's waiting readers should look again.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Wake {
    /// Messages became available (an append, a batch returned for redelivery): one
    /// waiting read can take them, and wakes the next if it leaves some behind.
    Available,
    /// The ISPB's streams changed (one closed, the tenant deleted, the cursor moved):
    /// every waiting read must look at its own stream again.
    Streams,
}

impl Wake {
    /// The wake that covers both `self` and `other`: waking every reader covers
    /// waking one.
    pub fn and(self, other: Wake) -> Wake {
        self.max(other)
    }
}

#[cfg(test)]
mod tests {
    use super::Wake;

    #[test]
    fn waking_every_reader_covers_waking_one() {
        assert_eq!(Wake::Available.and(Wake::Streams), Wake::Streams);
        assert_eq!(Wake::Streams.and(Wake::Available), Wake::Streams);
        assert_eq!(Wake::Available.and(Wake::Available), Wake::Available);
    }
}
