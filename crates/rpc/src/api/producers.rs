//! `koma_producers`: who produces a block (docs/producers.md).

use super::KomaApi;
use crate::backend::SpanProducers;
use crate::error::{internal, invalid_params};
use crate::params::Quantity;
use alloy::eips::BlockNumberOrTag;
use jsonrpsee::core::RpcResult;
use serde::{Deserialize, Deserializer};

/// `koma_producers`' parameter: a block number or tag, or `{"span": n}`.
#[derive(Debug, Clone, Copy)]
pub enum ProducersAt {
    Block(BlockNumberOrTag),
    Span(u64),
}

impl<'de> Deserialize<'de> for ProducersAt {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Span {
            span: Quantity,
        }
        let value = serde_json::Value::deserialize(d)?;
        if value.is_object() {
            return serde_json::from_value::<Span>(value)
                .map(|s| Self::Span(s.span.0))
                .map_err(|e| serde::de::Error::custom(format!("expected {{\"span\": n}}: {e}")));
        }
        serde_json::from_value::<BlockNumberOrTag>(value)
            .map(Self::Block)
            .map_err(|e| {
                serde::de::Error::custom(format!(
                    "expected a block number or tag, or {{\"span\": n}}: {e}"
                ))
            })
    }
}

impl KomaApi {
    pub(super) fn producers_at(&self, at: Option<ProducersAt>) -> RpcResult<Option<SpanProducers>> {
        let Some(producers) = self.state.producers.clone() else {
            return Ok(None);
        };
        let snap = self.snapshot()?;
        let number = match at.unwrap_or(ProducersAt::Block(BlockNumberOrTag::Pending)) {
            ProducersAt::Block(BlockNumberOrTag::Pending) => snap.head().number().saturating_add(1),
            ProducersAt::Block(tag) => self.tag_number(&snap, tag),
            ProducersAt::Span(span) => span
                .checked_mul(self.state.spec.producers.span)
                .ok_or_else(|| invalid_params("span out of range"))?,
        };
        producers.producers_of_block(number).map_err(internal)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<ProducersAt, String> {
        serde_json::from_str(json).map_err(|e| e.to_string())
    }

    #[test]
    fn a_block_or_a_span() {
        assert!(matches!(
            parse(r#""pending""#),
            Ok(ProducersAt::Block(BlockNumberOrTag::Pending))
        ));
        assert!(matches!(
            parse(r#""0x20""#),
            Ok(ProducersAt::Block(BlockNumberOrTag::Number(32)))
        ));
        assert!(matches!(parse(r#"{"span": 3}"#), Ok(ProducersAt::Span(3))));
        assert!(matches!(
            parse(r#"{"span": "0x3"}"#),
            Ok(ProducersAt::Span(3))
        ));
        let err = parse(r#"{"spam": 3}"#).unwrap_err();
        assert!(err.contains("expected {\"span\": n}"), "{err}");
        let err = parse(r#""soon""#).unwrap_err();
        assert!(err.contains("expected a block number or tag"), "{err}");
        assert!(parse(r#"{"span": -1}"#).is_err());
    }
}
