//! Desired entries that are not built until they must be written.
//!
//! A resync of 16,000 Services that are all in place must not allocate 48,000 objects only to
//! find them equal and drop them. A spec borrows from the facts, compares itself with the
//! observed entry field by field, and builds the owned entry only for a create or update.
//! `matches(o)` must equal `o == build()`: the observed entry is destructured exhaustively so a
//! new field cannot be forgotten, and the tests below check both directions field by field.

use crate::panorama::model::{
    Address, AddressValue, DestinationTranslation, NatRule, Protocol, ServiceObject, SourceTranslation, StaticRoute, Tag,
};
use crate::panorama::naming::{concat, decimal};
use crate::settings::PlanSettings;

/// What every spec may need besides its own fields.
pub(crate) struct Ctx<'a> {
    pub settings: &'a PlanSettings,
    /// `managed by pano-eks (<deployment>)`, the end of every description.
    pub managed: String,
    /// Per managed cluster: `[marker, cluster tag]`.
    pub tags: Vec<Vec<String>>,
}

/// A desired entry of kind `Entry`.
pub(crate) trait Spec {
    type Entry;
    fn name(&self) -> &str;
    /// Whether `observed` is exactly what [`Spec::build`] would produce.
    fn matches(&self, ctx: &Ctx, observed: &Self::Entry) -> bool;
    fn build(self, ctx: &Ctx) -> Self::Entry;
}

/// Entries built eagerly (few of them) are their own spec.
macro_rules! built {
    ($($t:ty),*) => {$(
        impl Spec for $t {
            type Entry = $t;
            fn name(&self) -> &str {
                &self.name
            }
            fn matches(&self, _: &Ctx, observed: &$t) -> bool {
                self == observed
            }
            fn build(self, _: &Ctx) -> $t {
                self
            }
        }
    )*};
}
built!(Tag, StaticRoute);

/// A rule built eagerly (outbound) matches regardless of the observed `uuid`.
impl Spec for NatRule {
    type Entry = NatRule;
    fn name(&self) -> &str {
        &self.name
    }
    fn matches(&self, _: &Ctx, observed: &NatRule) -> bool {
        self.same_content(observed)
    }
    fn build(self, _: &Ctx) -> NatRule {
        self
    }
}

/// `s == parts.concat()` without allocating.
fn eq_concat(s: &str, parts: &[&str]) -> bool {
    let mut rest = s;
    for p in parts {
        match rest.strip_prefix(p) {
            Some(r) => rest = r,
            None => return false,
        }
    }
    rest.is_empty()
}

/// The Service an object protects; gives the shared description and tags.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Owner<'a> {
    /// Index into `Ctx::tags`.
    pub ci: usize,
    pub cluster: &'a str,
    pub namespace: &'a str,
    pub name: &'a str,
}

impl Owner<'_> {
    fn description_parts<'b>(&'b self, ctx: &'b Ctx) -> [&'b str; 7] {
        [self.cluster, "/", self.namespace, "/", self.name, " - ", &ctx.managed]
    }

    fn description(&self, ctx: &Ctx) -> Option<String> {
        Some(concat(&self.description_parts(ctx)))
    }

    fn description_is(&self, ctx: &Ctx, d: &Option<String>) -> bool {
        d.as_deref().is_some_and(|d| eq_concat(d, &self.description_parts(ctx)))
    }

    fn tags<'c>(&self, ctx: &'c Ctx) -> &'c [String] {
        &ctx.tags[self.ci]
    }
}

/// The FQDN address object of a Service's internal NLB.
pub(crate) struct AddressSpec<'a> {
    pub name: String,
    pub owner: Owner<'a>,
    pub hostname: &'a str,
    /// With `[sync.security]`: the namespace tag after the cluster's tags (dynamic groups).
    pub ns_tag: Option<String>,
}

impl Spec for AddressSpec<'_> {
    type Entry = Address;
    fn name(&self) -> &str {
        &self.name
    }
    fn matches(&self, ctx: &Ctx, o: &Address) -> bool {
        let Address { name, value, description, tags, unmodelled } = o;
        *name == self.name
            && matches!(value, AddressValue::Fqdn(h) if h == self.hostname)
            && self.owner.description_is(ctx, description)
            && match &self.ns_tag {
                None => tags == self.owner.tags(ctx),
                Some(ns) => tags.split_last().is_some_and(|(last, base)| last == ns && base == self.owner.tags(ctx)),
            }
            && unmodelled.is_empty()
    }
    fn build(self, ctx: &Ctx) -> Address {
        let mut tags = self.owner.tags(ctx).to_vec();
        tags.extend(self.ns_tag);
        Address {
            value: AddressValue::Fqdn(self.hostname.to_owned()),
            description: self.owner.description(ctx),
            tags,
            unmodelled: vec![],
            name: self.name,
        }
    }
}

/// The TCP service object of a label port.
pub(crate) struct ServiceSpec<'a> {
    pub name: String,
    pub owner: Owner<'a>,
    pub port: u16,
}

/// `s` is `n` written in canonical decimal.
fn is_decimal(s: &str, n: u16) -> bool {
    s.bytes().all(|c| c.is_ascii_digit()) && !(s.len() > 1 && s.starts_with('0')) && s.parse() == Ok(n)
}

impl Spec for ServiceSpec<'_> {
    type Entry = ServiceObject;
    fn name(&self) -> &str {
        &self.name
    }
    fn matches(&self, ctx: &Ctx, o: &ServiceObject) -> bool {
        let ServiceObject { name, protocol, port, description, tags, unmodelled } = o;
        *name == self.name
            && *protocol == Protocol::Tcp
            && is_decimal(port, self.port)
            && self.owner.description_is(ctx, description)
            && tags == self.owner.tags(ctx)
            && unmodelled.is_empty()
    }
    fn build(self, ctx: &Ctx) -> ServiceObject {
        ServiceObject {
            protocol: Protocol::Tcp,
            port: decimal(self.port, &mut [0; 5]).to_owned(),
            description: self.owner.description(ctx),
            tags: self.owner.tags(ctx).to_vec(),
            unmodelled: vec![],
            name: self.name,
        }
    }
}

/// The inbound NAT rule: untrust → untrust on the label port, source NAT to the trust
/// interface, dynamic destination NAT to the NLB's FQDN (static NAT cannot target an FQDN).
pub(crate) struct InboundRuleSpec<'a> {
    pub name: String,
    pub owner: Owner<'a>,
    pub address: String,
    pub service: String,
    pub target_port: u16,
}

const ANY: &str = "any";
const DISTRIBUTION: &str = "round-robin";

fn is_one(list: &[String], value: &str) -> bool {
    matches!(list, [only] if only == value)
}

impl Spec for InboundRuleSpec<'_> {
    type Entry = NatRule;
    fn name(&self) -> &str {
        &self.name
    }
    fn matches(&self, ctx: &Ctx, o: &NatRule) -> bool {
        let NatRule {
            name,
            from,
            to,
            source,
            destination,
            service,
            to_interface,
            source_translation,
            destination_translation,
            description,
            tags,
            disabled,
            unmodelled,
            uuid: _,
        } = o;
        let s = ctx.settings;
        *name == self.name
            && is_one(from, &s.untrust_zone)
            && *to == s.untrust_zone
            && is_one(source, ANY)
            && is_one(destination, ANY)
            && *service == self.service
            && to_interface.is_none()
            && matches!(source_translation, Some(SourceTranslation::InterfaceAddress { interface }) if *interface == s.trust_interface)
            && matches!(destination_translation, Some(DestinationTranslation::Dynamic { address, port, distribution })
                if *address == self.address && *port == Some(self.target_port) && distribution == DISTRIBUTION)
            && self.owner.description_is(ctx, description)
            && tags == self.owner.tags(ctx)
            && !*disabled
            && unmodelled.is_empty()
    }
    fn build(self, ctx: &Ctx) -> NatRule {
        let s = ctx.settings;
        NatRule {
            from: vec![s.untrust_zone.clone()],
            to: s.untrust_zone.clone(),
            source: vec![ANY.to_owned()],
            destination: vec![ANY.to_owned()],
            service: self.service,
            to_interface: None,
            source_translation: Some(SourceTranslation::InterfaceAddress { interface: s.trust_interface.clone() }),
            destination_translation: Some(DestinationTranslation::Dynamic {
                address: self.address,
                port: Some(self.target_port),
                distribution: DISTRIBUTION.to_owned(),
            }),
            description: self.owner.description(ctx),
            tags: self.owner.tags(ctx).to_vec(),
            disabled: false,
            unmodelled: vec![],
            uuid: None,
            name: self.name,
        }
    }
}

/// Inbound and outbound rules share one rulebase, so they are diffed as one kind.
pub(crate) enum RuleSpec<'a> {
    Inbound(InboundRuleSpec<'a>),
    Built(NatRule),
}

impl Spec for RuleSpec<'_> {
    type Entry = NatRule;
    fn name(&self) -> &str {
        match self {
            RuleSpec::Inbound(r) => r.name(),
            RuleSpec::Built(r) => &r.name,
        }
    }
    fn matches(&self, ctx: &Ctx, o: &NatRule) -> bool {
        match self {
            RuleSpec::Inbound(r) => r.matches(ctx, o),
            RuleSpec::Built(r) => r.same_content(o),
        }
    }
    fn build(self, ctx: &Ctx) -> NatRule {
        match self {
            RuleSpec::Inbound(r) => r.build(ctx),
            RuleSpec::Built(r) => r,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(settings: &PlanSettings) -> Ctx<'_> {
        Ctx { settings, managed: "managed by pano-eks (prod)".into(), tags: vec![vec!["pano-eks".into(), "pano-eks.prod.shop".into()]] }
    }

    const OWNER: Owner<'static> = Owner { ci: 0, cluster: "shop", namespace: "default", name: "web" };

    type Mutation<E> = (&'static str, fn(&mut E));

    /// `matches` accepts what `build` makes and rejects every single-field change of it.
    fn check<S: Spec>(ctx: &Ctx, make: impl Fn() -> S, mutations: Vec<Mutation<S::Entry>>) {
        let built = make().build(ctx);
        assert!(make().matches(ctx, &built), "spec must match what it builds");
        for (what, mutate) in mutations {
            let mut changed = make().build(ctx);
            mutate(&mut changed);
            assert!(!make().matches(ctx, &changed), "spec must notice a changed {what}");
        }
    }

    #[test]
    fn address_spec_matches_exactly_what_it_builds() {
        let settings = PlanSettings::new("prod", "dg", "t");
        let make = || AddressSpec { name: "a".into(), owner: OWNER, hostname: "internal-x.elb.amazonaws.com", ns_tag: None };
        let with_ns = || AddressSpec { ns_tag: Some("pano-eks.prod.shop.default".into()), ..make() };
        check(
            &ctx(&settings),
            with_ns,
            vec![("namespace tag", |o| o.tags.pop().map(drop).unwrap_or(())), ("tag order", |o| o.tags.reverse())],
        );
        check(
            &ctx(&settings),
            make,
            vec![
                ("name", |o| o.name.push('x')),
                ("value", |o| o.value = AddressValue::Fqdn("other".into())),
                ("value type", |o| o.value = AddressValue::IpNetmask("internal-x.elb.amazonaws.com".into())),
                ("description", |o| o.description = Some("shop/default/web".into())),
                ("missing description", |o| o.description = None),
                ("tags", |o| o.tags.reverse()),
                ("unmodelled", |o| o.unmodelled.push("<x/>".into())),
            ],
        );
    }

    #[test]
    fn service_spec_matches_exactly_what_it_builds() {
        let settings = PlanSettings::new("prod", "dg", "t");
        let make = || ServiceSpec { name: "s".into(), owner: OWNER, port: 82 };
        check(
            &ctx(&settings),
            make,
            vec![
                ("name", |o| o.name.push('x')),
                ("protocol", |o| o.protocol = Protocol::Udp),
                ("port", |o| o.port = "83".into()),
                ("port spelling", |o| o.port = "082".into()),
                ("port sign", |o| o.port = "+82".into()),
                ("description", |o| o.description = Some("x".into())),
                ("tags", |o| o.tags.pop().map(drop).unwrap_or(())),
                ("unmodelled", |o| o.unmodelled.push("<x/>".into())),
            ],
        );
    }

    #[test]
    fn inbound_rule_spec_matches_exactly_what_it_builds() {
        let settings = PlanSettings::new("prod", "dg", "t");
        let make = || InboundRuleSpec { name: "r".into(), owner: OWNER, address: "a".into(), service: "s".into(), target_port: 80 };
        check(
            &ctx(&settings),
            make,
            vec![
                ("name", |o| o.name.push('x')),
                ("from", |o| o.from.push("trust".into())),
                ("to", |o| o.to = "trust".into()),
                ("source", |o| o.source = vec!["10.0.0.0/8".into()]),
                ("destination", |o| o.destination.push("any".into())),
                ("service", |o| o.service = "any".into()),
                ("to-interface", |o| o.to_interface = Some("ethernet1/2".into())),
                ("source translation", |o| {
                    o.source_translation = Some(SourceTranslation::InterfaceAddress { interface: "ethernet1/1".into() })
                }),
                ("no source translation", |o| o.source_translation = None),
                ("dnat address", |o| {
                    o.destination_translation =
                        Some(DestinationTranslation::Dynamic { address: "b".into(), port: Some(80), distribution: "round-robin".into() })
                }),
                ("dnat port", |o| {
                    o.destination_translation =
                        Some(DestinationTranslation::Dynamic { address: "a".into(), port: None, distribution: "round-robin".into() })
                }),
                ("dnat distribution", |o| {
                    o.destination_translation =
                        Some(DestinationTranslation::Dynamic { address: "a".into(), port: Some(80), distribution: "ip-hash".into() })
                }),
                ("static dnat", |o| o.destination_translation = Some(DestinationTranslation::Other("<destination-translation/>".into()))),
                ("description", |o| o.description = None),
                ("tags", |o| o.tags.clear()),
                ("disabled", |o| o.disabled = true),
                ("unmodelled", |o| o.unmodelled.push("<target/>".into())),
            ],
        );
    }

    #[test]
    fn eq_concat_is_concatenation_equality() {
        assert!(eq_concat("a/b - c", &["a", "/", "b", " - ", "c"]));
        assert!(!eq_concat("a/b - cd", &["a", "/", "b", " - ", "c"]));
        assert!(!eq_concat("a/b", &["a", "/", "b", " - ", "c"]));
        assert!(eq_concat("", &[]));
        assert!(is_decimal("65535", 65535) && !is_decimal("065535", 65535) && !is_decimal("", 0));
    }
}
