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

pub fn rule_contains(rule: &str, ip: Ipv4Addr) -> bool {
    let Some((net, bits)) = parse_rule(rule) else { return false };
    let mask = if bits == 0 { 0 } else { u32::MAX << (32 - u32::from(bits)) };
    u32::from(net) & mask == u32::from(ip) & mask
}

/// The addresses no rule allows, in the order given.
pub fn not_allowed(addresses: &[Ipv4Addr], rules: &[String]) -> Vec<Ipv4Addr> {
    addresses.iter().copied().filter(|ip| !rules.iter().any(|r| rule_contains(r, *ip))).collect()
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
        let ips = parse_address_list("20.1.2.3, 40.80.9.9,52.1.1.1,2603:1030::1,52.1.1.1");
        assert_eq!(ips.len(), 3);
        assert_eq!(not_allowed(&ips, &rules), vec!["52.1.1.1".parse::<Ipv4Addr>().unwrap()]);
        assert!(rule_contains("0.0.0.0/0", "8.8.8.8".parse().unwrap()));
        assert!(!rule_contains("1.2.3.4/33", "1.2.3.4".parse().unwrap()));
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
