//! Revert data from the L1 contracts, told the way `cast` tells it: the custom error's
//! name with its named arguments (`StakeTooLow(amount: 5, minimum: 1000000000000000000)`),
//! decoded against the ABIs of every committed artifact (so an ERC-20 error raised by the
//! token inside a root-contract call reads as well as the root contract's own), or a
//! Solidity `Error(string)` / `Panic(uint256)`.

use crate::bindings::artifacts;
use alloy::dyn_abi::{DynSolValue, JsonAbiExt};
use alloy::json_abi::{Error as AbiError, JsonAbi};
use std::collections::HashMap;
use std::sync::OnceLock;

/// Every custom error of the committed artifacts, by selector.
fn known_errors() -> &'static HashMap<[u8; 4], AbiError> {
    static ERRORS: OnceLock<HashMap<[u8; 4], AbiError>> = OnceLock::new();
    ERRORS.get_or_init(|| {
        [
            artifacts::ROOT_CHAIN,
            artifacts::BRIDGE,
            artifacts::STAKING_TOKEN,
            artifacts::L2_BRIDGE,
        ]
        .into_iter()
        .filter_map(|artifact| {
            let json: serde_json::Value = serde_json::from_str(artifact).ok()?;
            serde_json::from_value::<JsonAbi>(json.get("abi")?.clone()).ok()
        })
        .flat_map(|abi| abi.errors().cloned().collect::<Vec<_>>())
        .map(|e| (e.selector().0, e))
        .collect()
    })
}

/// `data` (a revert's return data) as a readable error, if it is one we can decode.
pub fn describe_revert(data: &[u8]) -> Option<String> {
    let selector: [u8; 4] = data.get(..4)?.try_into().ok()?;
    if let Some(error) = known_errors().get(&selector) {
        let values = error.abi_decode_input(&data[4..]).ok()?;
        let args: Vec<String> = error
            .inputs
            .iter()
            .zip(&values)
            .map(|(param, value)| {
                if param.name.is_empty() {
                    show(value)
                } else {
                    format!("{}: {}", param.name, show(value))
                }
            })
            .collect();
        return Some(format!("{}({})", error.name, args.join(", ")));
    }
    alloy::sol_types::decode_revert_reason(data)
}

/// A contract call's error: the decoded revert where the L1 returned revert data we
/// know, else the error as it came (a transport failure, an unknown contract's error).
pub fn revert_reason(e: &alloy::contract::Error) -> String {
    e.as_revert_data()
        .and_then(|data| describe_revert(&data))
        .unwrap_or_else(|| e.to_string())
}

fn show(value: &DynSolValue) -> String {
    match value {
        DynSolValue::Address(a) => a.to_string(),
        DynSolValue::Bool(b) => b.to_string(),
        DynSolValue::Uint(v, _) => v.to_string(),
        DynSolValue::Int(v, _) => v.to_string(),
        DynSolValue::FixedBytes(word, size) => {
            format!("0x{}", alloy_primitives::hex::encode(&word[..*size]))
        }
        DynSolValue::Bytes(b) => format!("0x{}", alloy_primitives::hex::encode(b)),
        DynSolValue::String(s) => format!("{s:?}"),
        DynSolValue::Array(items) | DynSolValue::FixedArray(items) => {
            format!(
                "[{}]",
                items.iter().map(show).collect::<Vec<_>>().join(", ")
            )
        }
        DynSolValue::Tuple(items) => {
            format!(
                "({})",
                items.iter().map(show).collect::<Vec<_>>().join(", ")
            )
        }
        other => format!("{other:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bindings::{Bridge, RootChain};
    use alloy::sol_types::{Revert, SolError};
    use alloy_primitives::{U256, address};

    #[test]
    fn root_contract_errors_read_with_their_argument_names() {
        let owner = address!("f39fd6e51aad88f6f4ce6ab8827279cfffb92266");
        let data = RootChain::NotStaker { owner }.abi_encode();
        assert_eq!(
            describe_revert(&data).unwrap(),
            "NotStaker(owner: 0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266)"
        );
        let data = RootChain::StakeTooLow {
            amount: U256::from(5),
            minimum: U256::from(10).pow(U256::from(18)),
        }
        .abi_encode();
        assert_eq!(
            describe_revert(&data).unwrap(),
            "StakeTooLow(amount: 5, minimum: 1000000000000000000)"
        );
        assert_eq!(
            describe_revert(&RootChain::NoRewards {}.abi_encode()).unwrap(),
            "NoRewards()"
        );
    }

    alloy::sol! {
        error ERC20InsufficientBalance(address sender, uint256 balance, uint256 needed);
    }

    #[test]
    fn the_bridge_and_token_errors_are_known_too() {
        for selector in Bridge::BridgeErrors::SELECTORS {
            assert!(
                known_errors().contains_key(selector),
                "{selector:?} missing"
            );
        }
        // the token's (OpenZeppelin's) error, raised inside a stake's transferFrom
        let sender = address!("70997970c51812dc3a010c7d01b50e0d17dc79c8");
        let data = ERC20InsufficientBalance {
            sender,
            balance: U256::from(1),
            needed: U256::from(2),
        }
        .abi_encode();
        assert_eq!(
            describe_revert(&data).unwrap(),
            "ERC20InsufficientBalance(sender: 0x70997970C51812dc3A010C7d01b50e0d17dc79C8, balance: 1, needed: 2)"
        );
    }

    #[test]
    fn solidity_strings_unknown_selectors_and_short_data() {
        let data = Revert::from("not allowed").abi_encode();
        assert_eq!(describe_revert(&data).unwrap(), "revert: not allowed");
        assert_eq!(describe_revert(&[0xde, 0xad, 0xbe, 0xef, 0, 1]), None);
        assert_eq!(describe_revert(&[0x01]), None);
        // a known selector with arguments that do not decode
        let mut bad = RootChain::NotStaker::SELECTOR.to_vec();
        bad.extend_from_slice(&[0xff; 7]);
        assert_eq!(describe_revert(&bad), None);
    }
}
