//! Per-kind access to [`Observed`]: the one place that lists which field holds which kind, so
//! that the readers and the watch cache handle every kind alike (a new kind is one line in
//! each match below; the compiler points at them).

use pano_eks_core::{Kind, Object, Observed};

/// Moves every entry of `kind` from `from` to the end of `into`'s list of that kind.
pub fn append(into: &mut Observed, from: &mut Observed, kind: Kind) {
    match kind {
        Kind::Tag => into.tags.append(&mut from.tags),
        Kind::Address => into.addresses.append(&mut from.addresses),
        Kind::Service => into.services.append(&mut from.services),
        Kind::NatRule => into.nat_rules.append(&mut from.nat_rules),
        Kind::StaticRoute => into.static_routes.append(&mut from.static_routes),
        Kind::AddressGroup => into.address_groups.append(&mut from.address_groups),
        Kind::SecurityRule => into.security_rules.append(&mut from.security_rules),
    }
}

/// Replaces `into`'s entries of `kind` with those of `from` (a fresh read of that container).
pub fn replace(into: &mut Observed, mut from: Observed, kind: Kind) {
    clear(into, kind);
    append(into, &mut from, kind);
}

fn clear(o: &mut Observed, kind: Kind) {
    match kind {
        Kind::Tag => o.tags.clear(),
        Kind::Address => o.addresses.clear(),
        Kind::Service => o.services.clear(),
        Kind::NatRule => o.nat_rules.clear(),
        Kind::StaticRoute => o.static_routes.clear(),
        Kind::AddressGroup => o.address_groups.clear(),
        Kind::SecurityRule => o.security_rules.clear(),
    }
}

/// The entries of `kind`, as objects, each with its position in the kind's list.
pub fn objects(o: &Observed, kind: Kind) -> Vec<Object> {
    match kind {
        Kind::Tag => o.tags.iter().cloned().map(Object::Tag).collect(),
        Kind::Address => o.addresses.iter().cloned().map(Object::Address).collect(),
        Kind::Service => o.services.iter().cloned().map(Object::Service).collect(),
        Kind::NatRule => o.nat_rules.iter().cloned().map(Object::NatRule).collect(),
        Kind::StaticRoute => o.static_routes.iter().cloned().map(Object::StaticRoute).collect(),
        Kind::AddressGroup => o.address_groups.iter().cloned().map(Object::AddressGroup).collect(),
        Kind::SecurityRule => o.security_rules.iter().cloned().map(Object::SecurityRule).collect(),
    }
}

/// The entries of `kind` whose names are in `names`, as objects (cloned; the list is scanned once).
pub fn named(o: &Observed, kind: Kind, names: &std::collections::BTreeSet<&str>) -> Vec<Object> {
    fn pick<T: Clone>(
        list: &[T],
        name: impl Fn(&T) -> &str,
        names: &std::collections::BTreeSet<&str>,
        wrap: fn(T) -> Object,
    ) -> Vec<Object> {
        list.iter().filter(|x| names.contains(name(x))).cloned().map(wrap).collect()
    }
    match kind {
        Kind::Tag => pick(&o.tags, |x| &x.name, names, Object::Tag),
        Kind::Address => pick(&o.addresses, |x| &x.name, names, Object::Address),
        Kind::Service => pick(&o.services, |x| &x.name, names, Object::Service),
        Kind::NatRule => pick(&o.nat_rules, |x| &x.name, names, Object::NatRule),
        Kind::StaticRoute => pick(&o.static_routes, |x| &x.name, names, Object::StaticRoute),
        Kind::AddressGroup => pick(&o.address_groups, |x| &x.name, names, Object::AddressGroup),
        Kind::SecurityRule => pick(&o.security_rules, |x| &x.name, names, Object::SecurityRule),
    }
}

/// How many entries of `kind` there are.
pub fn count(o: &Observed, kind: Kind) -> usize {
    match kind {
        Kind::Tag => o.tags.len(),
        Kind::Address => o.addresses.len(),
        Kind::Service => o.services.len(),
        Kind::NatRule => o.nat_rules.len(),
        Kind::StaticRoute => o.static_routes.len(),
        Kind::AddressGroup => o.address_groups.len(),
        Kind::SecurityRule => o.security_rules.len(),
    }
}
