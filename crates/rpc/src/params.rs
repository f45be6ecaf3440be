//! Parameters whose size the client chooses, decoded with that size bounded.
//!
//! A list longer than its limit is not collected: decoding keeps the first `limit`
//! entries, only counts the rest, and the handler answers -32602 with geth's text. So
//! a 4 MB list of addresses costs no more memory than a list of 1,000.

use crate::error::invalid_params;
use alloy::eips::BlockNumberOrTag;
use alloy::rpc::types::{Filter, FilterBlockOption, FilterSet, Topic};
use alloy_primitives::{Address, B256};
use jsonrpsee::core::RpcResult;
use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use std::fmt;
use std::marker::PhantomData;

/// Most addresses in a log filter (geth's `maxAddresses`).
pub const MAX_ADDRESSES: usize = 1_000;
/// Most topic positions in a log filter (LOG0 to LOG4, geth's `maxTopics`).
pub const MAX_TOPICS: usize = 4;
/// Most alternatives in one topic position (geth's `maxSubTopics`).
pub const MAX_SUB_TOPICS: usize = 1_000;
/// Most reward percentiles of one `eth_feeHistory` (geth's `maxQueryLimit`).
pub const MAX_REWARD_PERCENTILES: usize = 100;

/// A JSON list decoded with at most `N` entries kept.
#[derive(Debug, Clone, PartialEq)]
pub struct Bounded<T, const N: usize> {
    /// The first `N` entries.
    pub items: Vec<T>,
    /// How many entries the list had.
    pub count: usize,
}

impl<T, const N: usize> Bounded<T, N> {
    pub fn over_limit(&self) -> bool {
        self.count > N
    }
}

struct BoundedVisitor<T, const N: usize>(PhantomData<T>);

impl<'de, T: Deserialize<'de>, const N: usize> Visitor<'de> for BoundedVisitor<T, N> {
    type Value = Bounded<T, N>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "an array")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut items = Vec::new();
        let mut count = 0usize;
        while count < N {
            match seq.next_element::<T>()? {
                Some(item) => {
                    items.push(item);
                    count = count.saturating_add(1);
                }
                None => return Ok(Bounded { items, count }),
            }
        }
        while seq.next_element::<IgnoredAny>()?.is_some() {
            count = count.saturating_add(1);
        }
        Ok(Bounded { items, count })
    }
}

impl<'de, T: Deserialize<'de>, const N: usize> Deserialize<'de> for Bounded<T, N> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_seq(BoundedVisitor::<T, N>(PhantomData))
    }
}

/// A non-negative integer given as a JSON number (as Komodo's RPC takes them) or as a
/// hex quantity (as Ethereum's does).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quantity(pub u64);

impl<'de> Deserialize<'de> for Quantity {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct QuantityVisitor;
        impl Visitor<'_> for QuantityVisitor {
            type Value = Quantity;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "a non-negative integer or a hex quantity")
            }

            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Quantity, E> {
                Ok(Quantity(v))
            }

            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Quantity, E> {
                u64::try_from(v)
                    .map(Quantity)
                    .map_err(|_| E::custom("a negative number"))
            }

            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Quantity, E> {
                let digits = v
                    .strip_prefix("0x")
                    .ok_or_else(|| E::custom("a hex quantity starts with 0x"))?;
                u64::from_str_radix(digits, 16)
                    .map(Quantity)
                    .map_err(|e| E::custom(format!("invalid hex quantity: {e}")))
            }
        }
        d.deserialize_any(QuantityVisitor)
    }
}

/// The `rewardPercentiles` of `eth_feeHistory`.
pub type RewardPercentiles = Bounded<f64, MAX_REWARD_PERCENTILES>;

/// geth's checks of reward percentiles: at most 100, each in [0, 100], in order
/// (equal neighbours are allowed).
pub fn check_percentiles(p: &RewardPercentiles) -> RpcResult<&[f64]> {
    if p.over_limit() {
        return Err(invalid_params(format!(
            "invalid reward percentile: over the query limit {MAX_REWARD_PERCENTILES}"
        )));
    }
    let mut previous: Option<(usize, f64)> = None;
    for (i, &value) in p.items.iter().enumerate() {
        if !(0.0..=100.0).contains(&value) {
            return Err(invalid_params(format!(
                "invalid reward percentile: {value:.6}"
            )));
        }
        if let Some((j, before)) = previous
            && value < before
        {
            return Err(invalid_params(format!(
                "invalid reward percentile: #{j}:{before:.6} > #{i}:{value:.6}"
            )));
        }
        previous = Some((i, value));
    }
    Ok(&p.items)
}

/// A log filter (`eth_getLogs`, `eth_newFilter`, the `logs` subscription) as sent,
/// with its lists bounded. [`LogFilter::into_filter`] answers geth's errors.
#[derive(Debug, Clone, Default)]
pub struct LogFilter {
    from_block: Option<BlockNumberOrTag>,
    to_block: Option<BlockNumberOrTag>,
    block_hash: Option<B256>,
    /// `None`: any address.
    addresses: Option<Bounded<Address, MAX_ADDRESSES>>,
    /// Positions in order; `None`: any topic in that position.
    topics: Option<Bounded<Option<Bounded<B256, MAX_SUB_TOPICS>>, MAX_TOPICS>>,
}

impl LogFilter {
    /// The filter, or -32602 with geth's text when a list is over its limit.
    pub fn into_filter(self) -> RpcResult<Filter> {
        if self.addresses.as_ref().is_some_and(Bounded::over_limit) {
            return Err(invalid_params("exceed max addresses"));
        }
        if let Some(topics) = &self.topics
            && (topics.over_limit() || topics.items.iter().flatten().any(Bounded::over_limit))
        {
            return Err(invalid_params("exceed max topics"));
        }
        let block_option = match self.block_hash {
            Some(hash) => {
                if self.from_block.is_some() || self.to_block.is_some() {
                    return Err(invalid_params(
                        "cannot specify both BlockHash and FromBlock/ToBlock, choose one or the other",
                    ));
                }
                FilterBlockOption::AtBlockHash(hash)
            }
            None => FilterBlockOption::Range {
                from_block: self.from_block,
                to_block: self.to_block,
            },
        };
        let mut topics: [Topic; 4] = Default::default();
        if let Some(positions) = self.topics {
            for (slot, position) in topics.iter_mut().zip(positions.items) {
                if let Some(alternatives) = position {
                    *slot = FilterSet::from(alternatives.items);
                }
            }
        }
        Ok(Filter {
            block_option,
            address: self
                .addresses
                .map(|a| FilterSet::from(a.items))
                .unwrap_or_default(),
            topics,
        })
    }
}

/// `null`, one value, or a list of values of which a `null` makes the whole list a
/// wildcard (`None`). A list longer than `N` is counted, not kept.
struct OneOrMany<T, const N: usize>(PhantomData<T>);

impl<'de, T: Deserialize<'de>, const N: usize> Visitor<'de> for OneOrMany<T, N> {
    type Value = Option<Bounded<T, N>>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("null, a value or an array of values")
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        let item = T::deserialize(de::value::BorrowedStrDeserializer::new(v))?;
        Ok(Some(Bounded {
            items: vec![item],
            count: 1,
        }))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        let item = T::deserialize(de::value::StringDeserializer::new(v.to_string()))?;
        Ok(Some(Bounded {
            items: vec![item],
            count: 1,
        }))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut items = Vec::new();
        let mut count = 0usize;
        let mut wildcard = false;
        while let Some(item) = seq.next_element::<Option<T>>()? {
            count = count.saturating_add(1);
            match item {
                None => wildcard = true,
                Some(item) if !wildcard => items.push(item),
                Some(_) => {}
            }
            if count >= N {
                break;
            }
        }
        while seq.next_element::<IgnoredAny>()?.is_some() {
            count = count.saturating_add(1);
        }
        if wildcard && count <= N {
            return Ok(None);
        }
        Ok(Some(Bounded { items, count }))
    }
}

struct OneOrManySeed<T, const N: usize>(PhantomData<T>);

impl<'de, T: Deserialize<'de>, const N: usize> DeserializeSeed<'de> for OneOrManySeed<T, N> {
    type Value = Option<Bounded<T, N>>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(OneOrMany::<T, N>(PhantomData))
    }
}

/// One topic position: `null`, a topic, or a list of alternatives.
struct Position(Option<Bounded<B256, MAX_SUB_TOPICS>>);

impl<'de> Deserialize<'de> for Position {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        OneOrManySeed::<B256, MAX_SUB_TOPICS>(PhantomData)
            .deserialize(d)
            .map(Position)
    }
}

/// The `topics` list: `null` or up to [`MAX_TOPICS`] positions.
struct Topics(Option<Bounded<Option<Bounded<B256, MAX_SUB_TOPICS>>, MAX_TOPICS>>);

impl<'de> Deserialize<'de> for Topics {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let positions = Option::<Bounded<Position, MAX_TOPICS>>::deserialize(d)?;
        Ok(Topics(positions.map(|p| Bounded {
            items: p.items.into_iter().map(|Position(t)| t).collect(),
            count: p.count,
        })))
    }
}

#[derive(Deserialize)]
#[serde(field_identifier, rename_all = "camelCase")]
enum Field {
    FromBlock,
    ToBlock,
    BlockHash,
    Address,
    Topics,
    #[serde(other)]
    Other,
}

impl<'de> Deserialize<'de> for LogFilter {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct FilterVisitor;
        impl<'de> Visitor<'de> for FilterVisitor {
            type Value = LogFilter;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a filter object")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<LogFilter, A::Error> {
                let mut filter = LogFilter::default();
                while let Some(field) = map.next_key::<Field>()? {
                    match field {
                        Field::FromBlock => filter.from_block = map.next_value()?,
                        Field::ToBlock => filter.to_block = map.next_value()?,
                        Field::BlockHash => filter.block_hash = map.next_value()?,
                        Field::Address => {
                            filter.addresses =
                                map.next_value_seed(OneOrManySeed::<Address, MAX_ADDRESSES>(
                                    PhantomData,
                                ))?;
                        }
                        Field::Topics => filter.topics = map.next_value::<Topics>()?.0,
                        Field::Other => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(filter)
            }
        }
        d.deserialize_map(FilterVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> RpcResult<Filter> {
        serde_json::from_str::<LogFilter>(json)
            .unwrap()
            .into_filter()
    }

    fn address(i: usize) -> String {
        format!("\"{:#042x}\"", i.saturating_add(1))
    }

    #[test]
    fn filters_decode_like_alloy() {
        let a = "0x00000000000000000000000000000000000000aa";
        let t = "0x00000000000000000000000000000000000000000000000000000000000000bb";
        for json in [
            "{}".to_string(),
            format!(r#"{{"fromBlock":"0x1","toBlock":"latest","address":"{a}"}}"#),
            format!(r#"{{"address":["{a}"],"topics":["{t}",null,["{t}","{t}"]]}}"#),
            format!(r#"{{"address":null,"topics":[null,["{t}",null]]}}"#),
            format!(r#"{{"blockHash":"{t}","topics":[]}}"#),
            format!(r#"{{"fromBlock":"earliest","toBlock":"0x10","topics":["{t}"]}}"#),
        ] {
            let ours = parse(&json).unwrap();
            let alloys: Filter = serde_json::from_str(&json).unwrap();
            assert_eq!(ours, alloys, "{json}");
        }
        // Unknown fields are ignored, as geth does.
        assert!(parse(r#"{"foo":[1,2,3]}"#).is_ok());
        // A log matches as with alloy's own decoding.
        let f = parse(&format!(r#"{{"address":"{a}","topics":[["{t}"]]}}"#)).unwrap();
        let log = alloy_primitives::Log::new_unchecked(
            a.parse().unwrap(),
            vec![t.parse().unwrap()],
            Default::default(),
        );
        assert!(f.matches(&log));
    }

    #[test]
    fn filter_sizes_are_bounded_with_geths_texts() {
        let max: Vec<String> = (0..MAX_ADDRESSES).map(address).collect();
        let ok = format!(r#"{{"address":[{}]}}"#, max.join(","));
        assert_eq!(parse(&ok).unwrap().address.len(), MAX_ADDRESSES);

        let many: Vec<String> = (0..100_000).map(address).collect();
        let json = format!(r#"{{"address":[{}]}}"#, many.join(","));
        let decoded: LogFilter = serde_json::from_str(&json).unwrap();
        // Only the first 1,000 were kept.
        assert_eq!(
            decoded.addresses.as_ref().unwrap().items.len(),
            MAX_ADDRESSES
        );
        assert_eq!(decoded.addresses.as_ref().unwrap().count, 100_000);
        let e = decoded.into_filter().unwrap_err();
        assert_eq!((e.code(), e.message()), (-32602, "exceed max addresses"));

        let t = "\"0x00000000000000000000000000000000000000000000000000000000000000bb\"";
        let five = format!(r#"{{"topics":[{t},{t},{t},{t},{t}]}}"#);
        assert_eq!(parse(&five).unwrap_err().message(), "exceed max topics");
        let four = format!(r#"{{"topics":[{t},{t},{t},{t}]}}"#);
        assert!(parse(&four).is_ok());
        let alternatives = vec![t; MAX_SUB_TOPICS + 1].join(",");
        let wide = format!(r#"{{"topics":[[{alternatives}]]}}"#);
        assert_eq!(parse(&wide).unwrap_err().message(), "exceed max topics");
        // A null among too many alternatives does not hide the excess.
        let wide_null = format!(r#"{{"topics":[[null,{alternatives}]]}}"#);
        assert_eq!(
            parse(&wide_null).unwrap_err().message(),
            "exceed max topics"
        );

        let both = format!(r#"{{"blockHash":{t},"fromBlock":"0x1"}}"#);
        assert_eq!(
            parse(&both).unwrap_err().message(),
            "cannot specify both BlockHash and FromBlock/ToBlock, choose one or the other"
        );
        // Malformed entries are still decoding errors.
        assert!(serde_json::from_str::<LogFilter>(r#"{"address":["0x12"]}"#).is_err());
        assert!(serde_json::from_str::<LogFilter>(r#"{"topics":"x"}"#).is_err());
    }

    #[test]
    fn percentiles_are_bounded_with_geths_texts() {
        let p = |json: &str| serde_json::from_str::<RewardPercentiles>(json).unwrap();
        assert_eq!(check_percentiles(&p("[]")).unwrap(), &[] as &[f64]);
        assert_eq!(
            check_percentiles(&p("[0, 25, 25, 100]")).unwrap(),
            &[0.0, 25.0, 25.0, 100.0]
        );
        let many = format!("[{}]", vec!["50"; 200_000].join(","));
        let decoded = p(&many);
        assert_eq!((decoded.items.len(), decoded.count), (100, 200_000));
        assert_eq!(
            check_percentiles(&decoded).unwrap_err().message(),
            "invalid reward percentile: over the query limit 100"
        );
        let e = check_percentiles(&p("[10, 101]")).unwrap_err();
        assert_eq!(
            (e.code(), e.message()),
            (-32602, "invalid reward percentile: 101.000000")
        );
        assert_eq!(
            check_percentiles(&p("[-1]")).unwrap_err().message(),
            "invalid reward percentile: -1.000000"
        );
        assert_eq!(
            check_percentiles(&p("[50, 40]")).unwrap_err().message(),
            "invalid reward percentile: #0:50.000000 > #1:40.000000"
        );
    }
}
