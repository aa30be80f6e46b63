//! Registry network rules against the addresses and networks a target pulls from.

use std::net::Ipv4Addr;

/// An ACR IP rule: one IPv4 address or a CIDR range (ACR accepts IPv4 only).
pub fn parse_rule(rule: &str) -> Option<(Ipv4Addr, u8)> {
    let rule = rule.trim();
    match rule.split_once('/') {
        Some((addr, bits)) => {
            let bits: u8 = bits.parse().ok().filter(|b| *b <= 32)?;
            Some((addr.parse().ok()?, bits))
        }
        None => Some((rule.parse().ok()?, 32)),
    }
}

/// An IPv4 network: an address and a prefix length (32 for one address).
pub type Net = (Ipv4Addr, u8);

fn masked(ip: Ipv4Addr, bits: u8) -> u32 {
    let mask = if bits == 0 { 0 } else { u32::MAX << (32 - u32::from(bits.min(32))) };
    u32::from(ip) & mask
}

pub fn rule_contains(rule: &str, ip: Ipv4Addr) -> bool {
    let Some((net, bits)) = parse_rule(rule) else { return false };
    masked(net, bits) == masked(ip, bits)
}

/// `20.1.2.3` for one address, `20.70.12.0/30` for a range.
pub fn show(net: Net) -> String {
    if net.1 >= 32 {
        net.0.to_string()
    } else {
        format!("{}/{}", Ipv4Addr::from(masked(net.0, net.1)), net.1)
    }
}

/// Whether every address of `net` is allowed by the union of `rules`: inside one rule, or
/// both halves covered (recursing only where a smaller rule lies inside, so at most 32
/// levels per rule).
fn covered(net: Net, rules: &[Net]) -> bool {
    let (addr, bits) = net;
    if rules.iter().any(|(r, rb)| *rb <= bits && masked(*r, *rb) == masked(addr, *rb)) {
        return true;
    }
    if bits >= 32 || !rules.iter().any(|(r, rb)| *rb > bits && masked(*r, bits) == masked(addr, bits)) {
        return false;
    }
    let base = masked(addr, bits);
    let upper = base | (1u32 << (31 - u32::from(bits)));
    covered((Ipv4Addr::from(base), bits + 1), rules) && covered((Ipv4Addr::from(upper), bits + 1), rules)
}

/// The networks the rules do not wholly allow, in the order given.
pub fn not_allowed(networks: &[Net], rules: &[String]) -> Vec<Net> {
    let rules: Vec<Net> = rules.iter().filter_map(|r| parse_rule(r)).collect();
    networks.iter().copied().filter(|n| !covered(*n, &rules)).collect()
}

/// App Service lists its outbound addresses comma-separated; IPv6 ones are ignored (ACR
/// rules are IPv4).
pub fn parse_address_list(text: &str) -> Vec<Ipv4Addr> {
    let mut out: Vec<Ipv4Addr> = Vec::new();
    for ip in text.split(',').filter_map(|s| s.trim().parse::<Ipv4Addr>().ok()) {
        if !out.contains(&ip) {
            out.push(ip);
        }
    }
    out
}

/// `.../virtualNetworks/<vnet>/subnets/<subnet>` → `.../virtualNetworks/<vnet>`.
pub fn vnet_of_subnet(subnet_id: &str) -> Option<String> {
    let lower = subnet_id.to_ascii_lowercase();
    let at = lower.rfind("/subnets/")?;
    lower[..at].contains("/providers/microsoft.network/virtualnetworks/").then(|| subnet_id[..at].to_string())
}

pub fn same_id(a: &str, b: &str) -> bool {
    a.trim_end_matches('/').eq_ignore_ascii_case(b.trim_end_matches('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_match_addresses_and_ranges() {
        let rules = vec!["20.1.2.3".to_string(), "40.80.0.0/16".into(), "bogus".into(), "1.2.3.4/33".into()];
        let ips: Vec<Net> = parse_address_list("20.1.2.3, 40.80.9.9,52.1.1.1,2603:1030::1,52.1.1.1")
            .into_iter()
            .map(|ip| (ip, 32))
            .collect();
        assert_eq!(ips.len(), 3);
        assert_eq!(not_allowed(&ips, &rules), vec![("52.1.1.1".parse::<Ipv4Addr>().unwrap(), 32)]);
        assert!(rule_contains("0.0.0.0/0", "8.8.8.8".parse().unwrap()));
        assert!(!rule_contains("1.2.3.4/33", "1.2.3.4".parse().unwrap()));
    }

    #[test]
    fn prefixes_must_be_wholly_covered() {
        let net = |t: &str| parse_rule(t).unwrap();
        let rules = |r: &[&str]| r.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        // One address of a /30 allowed is not enough; the whole /30, or its two /31 halves, is.
        assert_eq!(not_allowed(&[net("20.70.12.0/30")], &rules(&["20.70.12.1"])), vec![net("20.70.12.0/30")]);
        assert!(not_allowed(&[net("20.70.12.0/30")], &rules(&["20.70.12.0/24"])).is_empty());
        assert!(not_allowed(&[net("20.70.12.0/30")], &rules(&["20.70.12.2/31", "20.70.12.0/31"])).is_empty());
        assert!(!not_allowed(&[net("20.70.12.0/30")], &rules(&["20.70.12.2/31", "20.70.12.0"])).is_empty());
        assert!(not_allowed(
            &[net("20.70.12.0/30")],
            &rules(&["20.70.12.0", "20.70.12.1", "20.70.12.2", "20.70.12.3"])
        )
        .is_empty());
        assert!(not_allowed(&[net("0.0.0.0/0")], &rules(&["0.0.0.0/1", "128.0.0.0/1"])).is_empty());
        assert_eq!(show(net("20.70.12.5/30")), "20.70.12.4/30");
        assert_eq!(show(net("20.70.12.5")), "20.70.12.5");
    }

    #[test]
    fn subnet_to_vnet() {
        let subnet = "/subscriptions/s/resourceGroups/net/providers/Microsoft.Network/virtualNetworks/hub/subnets/aks";
        assert_eq!(
            vnet_of_subnet(subnet).unwrap(),
            "/subscriptions/s/resourceGroups/net/providers/Microsoft.Network/virtualNetworks/hub"
        );
        assert_eq!(vnet_of_subnet("/subscriptions/s/resourceGroups/x/subnets/y"), None);
        assert!(same_id("/A/b/", "/a/B"));
    }
}
