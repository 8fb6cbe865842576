//! Dynamic address groups people write their own rules against: one per managed cluster
//! (`<deployment>.<cluster>`: every address object of the cluster's Services) and one per
//! namespace with protected Services (`<deployment>.<cluster>.<namespace>`), matching the tags
//! pano-eks already puts on its address objects (the cluster tag, and with `[sync.security]` a
//! namespace tag `pano-eks.<deployment>.<cluster>.<namespace>`).
//!
//! Filter syntax: tag names in single quotes joined by `and` / `or` (PAN-OS "Dynamic Address
//! Groups" match criteria; the form `'tag-a' and 'tag-b'` of the Ansible `panos_dag` module's
//! documented example). PAN-OS has no escape inside a quoted tag, so a tag containing a quote is
//! refused rather than written (strictest reading; ours never do, see `naming::is_safe_name`).
//!
//! A group holds address objects, which are the Services' internal NLBs: the *post-NAT*
//! destinations. Security policy matches pre-NAT addresses (see `rules`), so these groups fit
//! rules for traffic that reaches the NLBs without destination NAT (east-west through the
//! firewalls, logging, decryption), not the inbound allow rules, whose pre-NAT destination is
//! the firewall's own untrust address.

use crate::panorama::naming::{NAME_MAX, Names, TAG_NAME_MAX, fit};

/// The namespace tag of our address objects: `pano-eks.<deployment>.<cluster>.<namespace>`.
/// Cluster tags have no `.` after the prefix (cluster names cannot hold one), so the two never
/// collide.
pub fn namespace_tag(names: &Names, cluster: &str, namespace: &str) -> String {
    fit(names.cluster_tag_prefix(), &format!("{cluster}.{namespace}"), TAG_NAME_MAX)
}

/// `<deployment>.<cluster>`: one part after the prefix, where addresses have three.
pub fn cluster_group(names: &Names, cluster: &str) -> String {
    fit(&format!("{}.", names.deployment()), cluster, NAME_MAX)
}

/// `<deployment>.<cluster>.<namespace>`: two parts after the prefix.
pub fn namespace_group(names: &Names, cluster: &str, namespace: &str) -> String {
    fit(&format!("{}.", names.deployment()), &format!("{cluster}.{namespace}"), NAME_MAX)
}

/// A filter matching objects that carry every one of `tags`, each quoted.
pub fn filter_all(tags: &[&str]) -> Result<String, String> {
    let mut out = String::new();
    for t in tags {
        if t.is_empty() || t.contains(['\'', '"']) {
            return Err(format!("tag {t:?} cannot be quoted in a PAN-OS address group filter"));
        }
        if !out.is_empty() {
            out.push_str(" and ");
        }
        out.push('\'');
        out.push_str(t);
        out.push('\'');
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_filters() {
        let n = Names::new("prod");
        let table = [
            (namespace_tag(&n, "shop", "payments"), "pano-eks.prod.shop.payments"),
            (cluster_group(&n, "shop"), "prod.shop"),
            (namespace_group(&n, "shop", "payments"), "prod.shop.payments"),
            (filter_all(&["pano-eks.prod.shop"]).unwrap(), "'pano-eks.prod.shop'"),
            (filter_all(&["a", "b.c"]).unwrap(), "'a' and 'b.c'"),
        ];
        for (got, want) in table {
            assert_eq!(got, want);
        }
        for bad in ["it's", "", "say \"x\""] {
            assert!(filter_all(&[bad]).is_err(), "{bad:?}");
        }
        // Long names stay within the limits, readable prefix first.
        let long = "c".repeat(90);
        assert!(namespace_group(&n, &long, "ns").len() <= NAME_MAX && namespace_group(&n, &long, "ns").starts_with("prod.ccc"));
        assert!(namespace_tag(&n, &long, &"n".repeat(60)).len() <= TAG_NAME_MAX);
        assert_ne!(namespace_group(&n, &long, "a"), namespace_group(&n, &long, "b"));
    }
}
