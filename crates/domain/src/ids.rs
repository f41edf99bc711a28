//! Typed identifiers: a type prefix followed by a ULID, such as
//! `run_01HZY3J5W8Q9X2K7M4N6P0R1ST`.
//!
//! The domain only parses and formats ids; generating one needs a clock and
//! randomness, which is the application's `IdGenerator` port.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::{DomainError, echo};

/// Crockford's base-32 alphabet used by ULIDs.
const CROCKFORD: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// A 128-bit ULID: 48 bits of milliseconds since the Unix epoch, then 80 random bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Ulid(pub u128);

impl Ulid {
    /// Builds a ULID from its timestamp and random parts (the top 48 bits of
    /// `millis` and the low 80 bits of `random` are ignored).
    pub fn from_parts(millis: u64, random: u128) -> Self {
        let ts = u128::from(millis & 0xFFFF_FFFF_FFFF);
        let rnd = random & ((1u128 << 80) - 1);
        Self((ts << 80) | rnd)
    }

    /// Milliseconds since the Unix epoch encoded in the ULID.
    pub fn millis(self) -> u64 {
        // The shift leaves 48 significant bits, which always fit in a u64.
        u64::try_from(self.0 >> 80).unwrap_or(u64::MAX)
    }

    /// Parses the canonical 26-character form (case-insensitive).
    pub fn parse(s: &str) -> Option<Self> {
        let bytes = s.as_bytes();
        if bytes.len() != 26 {
            return None;
        }
        let mut value: u128 = 0;
        for (i, &b) in bytes.iter().enumerate() {
            let digit = decode_crockford(b)?;
            // The first character carries only 3 bits (26 * 5 = 130 > 128).
            if i == 0 && digit > 7 {
                return None;
            }
            value = (value << 5) | u128::from(digit);
        }
        Some(Self(value))
    }
}

fn decode_crockford(b: u8) -> Option<u8> {
    let upper = b.to_ascii_uppercase();
    CROCKFORD
        .iter()
        .position(|&c| c == upper)
        .and_then(|p| u8::try_from(p).ok())
}

impl fmt::Display for Ulid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = [0u8; 26];
        let mut value = self.0;
        for slot in out.iter_mut().rev() {
            let idx = usize::try_from(value & 0x1F).unwrap_or(0);
            *slot = CROCKFORD.get(idx).copied().unwrap_or(b'0');
            value >>= 5;
        }
        // Every byte comes from the ASCII alphabet above.
        f.write_str(std::str::from_utf8(&out).map_err(|_| fmt::Error)?)
    }
}

macro_rules! typed_id {
    ($(#[$doc:meta])* $name:ident, $prefix:literal, $kind:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(Ulid);

        impl $name {
            /// The type prefix of this id kind.
            pub const PREFIX: &'static str = $prefix;

            /// Wraps a ULID.
            pub fn from_ulid(ulid: Ulid) -> Self {
                Self(ulid)
            }

            /// The ULID behind the id.
            pub fn ulid(self) -> Ulid {
                self.0
            }

            /// Parses `prefix + ULID`; any other input is [`DomainError::InvalidId`].
            pub fn parse(s: &str) -> Result<Self, DomainError> {
                s.strip_prefix($prefix)
                    .and_then(Ulid::parse)
                    .map(Self)
                    .ok_or_else(|| DomainError::InvalidId {
                        kind: $kind,
                        prefix: $prefix,
                        value: echo(s),
                    })
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}{}", $prefix, self.0)
            }
        }

        impl FromStr for $name {
            type Err = DomainError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::parse(s)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                Self::parse(&s).map_err(serde::de::Error::custom)
            }
        }

        #[cfg(feature = "openapi")]
        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                utoipa::openapi::ObjectBuilder::new()
                    .schema_type(utoipa::openapi::schema::Type::String)
                    .pattern(Some(concat!("^", $prefix, "[0-7][0-9A-HJKMNP-TV-Za-hjkmnp-tv-z]{25}$")))
                    .examples([concat!($prefix, "01J9Z8Y7X6W5V4T3S2R1Q0P9NM")])
                    .into()
            }
        }

        #[cfg(feature = "openapi")]
        impl utoipa::ToSchema for $name {}
    };
}

typed_id!(
    /// Identifies a pipeline (`pipe_…`).
    PipelineId,
    "pipe_",
    "pipeline"
);
typed_id!(
    /// Identifies a run (`run_…`).
    RunId,
    "run_",
    "run"
);
typed_id!(
    /// Identifies a connector (`conn_…`).
    ConnectorId,
    "conn_",
    "connector"
);
typed_id!(
    /// Identifies an API key (`key_…`).
    ApiKeyId,
    "key_",
    "API key"
);

typed_id!(
    /// Identifies a webhook subscription (`whk_…`).
    WebhookId,
    "whk_",
    "webhook"
);
typed_id!(
    /// Identifies a webhook event (`evt_…`), the same on every delivery attempt.
    EventId,
    "evt_",
    "event"
);
typed_id!(
    /// Identifies one delivery attempt of a webhook event (`dlv_…`).
    DeliveryId,
    "dlv_",
    "delivery"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ulid_round_trips_through_text() {
        let u = Ulid::from_parts(1_700_000_000_000, 0x1234_5678_9ABC_DEF0_1234);
        let text = u.to_string();
        assert_eq!(text.len(), 26);
        assert_eq!(Ulid::parse(&text), Some(u));
        assert_eq!(Ulid::parse(&text.to_lowercase()), Some(u));
        assert_eq!(u.millis(), 1_700_000_000_000);
    }

    #[test]
    fn ulid_rejects_bad_text() {
        assert_eq!(Ulid::parse(""), None);
        assert_eq!(Ulid::parse("01HZY3J5W8Q9X2K7M4N6P0R1S"), None); // 25 chars
        assert_eq!(Ulid::parse("01HZY3J5W8Q9X2K7M4N6P0R1SUU"), None); // 27 chars
        assert_eq!(Ulid::parse("01HZY3J5W8Q9X2K7M4N6P0R1SU"), None); // U is not Crockford
        assert_eq!(Ulid::parse("81HZY3J5W8Q9X2K7M4N6P0R1ST"), None); // overflows 128 bits
        assert_eq!(Ulid::parse("01HZY3J5W8Q9X2K7M4N6P0R1Sé"), None);
    }

    #[test]
    fn typed_ids_parse_their_own_prefix_only() {
        let run = RunId::from_ulid(Ulid::from_parts(1, 2));
        let text = run.to_string();
        assert!(text.starts_with("run_"));
        assert_eq!(RunId::parse(&text), Ok(run));
        assert!(PipelineId::parse(&text).is_err());
        assert!(RunId::parse("run_").is_err());
        assert!(RunId::parse("RUN_01HZY3J5W8Q9X2K7M4N6P0R1ST").is_err());
        assert!(ConnectorId::parse("conn_01HZY3J5W8Q9X2K7M4N6P0R1ST").is_ok());
        assert!(ApiKeyId::parse("key_01HZY3J5W8Q9X2K7M4N6P0R1ST").is_ok());
    }

    #[test]
    fn ids_serialize_as_strings() {
        let id = PipelineId::from_ulid(Ulid::from_parts(5, 6));
        let json = serde_json::to_string(&id).expect("serialize");
        assert_eq!(json, format!("\"{id}\""));
        let back: PipelineId = serde_json::from_str(&json).expect("deserialize");
        assert_eq!(back, id);
        assert!(serde_json::from_str::<PipelineId>("\"pipe_nope\"").is_err());
    }

    #[test]
    fn ids_order_by_time() {
        let a = RunId::from_ulid(Ulid::from_parts(1000, u128::MAX));
        let b = RunId::from_ulid(Ulid::from_parts(1001, 0));
        assert!(a < b);
        assert!(a.to_string() < b.to_string());
    }
}
