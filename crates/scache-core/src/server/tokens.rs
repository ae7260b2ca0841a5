//! What each epoll token of the loop stands for. The low bits say the kind; the rest is an index
//! (a listener, a client slot) or a cached session's id, whose generation check makes a token that
//! outlived its session harmless.

use mio::Token;

use crate::cache::SessionId;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The embedder's thread wants attention (commands, watchdog).
    Waker,
    Listener(usize),
    Client(usize),
    /// master(8)'s status channel.
    Master,
    /// A cached connection, watched for its peer hanging up.
    Cached(SessionId),
}

const KIND_BITS: u32 = 3;
const KIND_MASK: usize = (1 << KIND_BITS) - 1;

impl Source {
    pub fn token(self) -> Token {
        Token(match self {
            Source::Waker => 0,
            Source::Listener(index) => (index << KIND_BITS) | 1,
            Source::Client(index) => (index << KIND_BITS) | 2,
            Source::Master => 3,
            // Session ids have at most 61 bits (see SessionId), so the shift loses nothing.
            Source::Cached(id) => ((id.to_u64() as usize) << KIND_BITS) | 4,
        })
    }

    pub fn of(token: Token) -> Option<Source> {
        let index = token.0 >> KIND_BITS;
        match token.0 & KIND_MASK {
            0 => Some(Source::Waker),
            1 => Some(Source::Listener(index)),
            2 => Some(Source::Client(index)),
            3 => Some(Source::Master),
            4 => Some(Source::Cached(SessionId::from_u64(index as u64))),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::Cache;

    #[test]
    fn tokens_round_trip() {
        let mut cache = Cache::new();
        let id = cache.save_endp(0, 1, b"e", b"", ());
        for source in [Source::Waker, Source::Listener(7), Source::Client(123_456), Source::Master, Source::Cached(id)]
        {
            assert_eq!(Source::of(source.token()), Some(source));
        }
        let wide = SessionId::from_u64(((1 << 29) - 1) << 32 | u64::from(u32::MAX));
        assert_eq!(Source::of(Source::Cached(wide).token()), Some(Source::Cached(wide)));
    }
}
