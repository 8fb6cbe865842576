//! What a Service asks of its allow rule, from its annotations: `pano-eks/applications` (a
//! comma list of App-IDs, default `any`) and `pano-eks/profile-group` (a security profile group,
//! default the config's). A bad value makes that Service `invalid` with the reason; the others
//! proceed.
//!
//! An App-ID pano-eks does not know is passed through: PAN-OS's App-ID catalogue changes with
//! every content update and Panorama resolves it at commit. What PAN-OS would refuse in any case
//! is refused here, naming the annotation: an empty item, a name outside PAN-OS's object-name
//! characters or over 31 characters (the application name limit), `any` mixed with other
//! members (PAN-OS: "any" cannot be combined), and a profile group that neither the device
//! group nor `shared` holds (the commit would fail on the dangling reference).

use std::collections::BTreeMap;

use crate::settings::SecuritySettings;

pub const APPLICATIONS: &str = "pano-eks/applications";
pub const PROFILE_GROUP: &str = "pano-eks/profile-group";
/// PAN-OS limits application names to 31 characters.
const APP_NAME_MAX: usize = 31;
/// Profile group names, like other objects, to 63.
const PROFILE_NAME_MAX: usize = 63;

/// What one Service's allow rule uses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RulePolicy {
    /// Sorted, deduplicated; `["any"]` when not annotated.
    pub applications: Vec<String>,
    pub profile_group: Option<String>,
}

/// `[A-Za-z0-9._-]`, starting alphanumeric, at most `max`.
fn is_object_name(s: &str, max: usize) -> bool {
    s.len() <= max && crate::panorama::naming::is_safe_name(s)
}

/// A comma list of App-IDs as PAN-OS would take it; `what` names where it came from.
pub fn applications(value: &str, what: &str) -> Result<Vec<String>, String> {
    let mut apps: Vec<String> = Vec::new();
    for item in value.split(',') {
        let item = item.trim();
        if item.is_empty() {
            return Err(format!("{what} {value:?} has an empty item"));
        }
        if !is_object_name(item, APP_NAME_MAX) {
            return Err(format!(
                "{what}: {item:?} is not an application name PAN-OS accepts (1-{APP_NAME_MAX} of [A-Za-z0-9._-], starting alphanumeric)"
            ));
        }
        apps.push(item.to_owned());
    }
    apps.sort();
    apps.dedup();
    if apps.len() > 1 && apps.iter().any(|a| a == "any") {
        return Err(format!("{what} {value:?} combines \"any\" with other applications, which PAN-OS refuses"));
    }
    Ok(apps)
}

fn profile_group(name: &str, what: &str, known: &[String]) -> Result<String, String> {
    let name = name.trim();
    if !is_object_name(name, PROFILE_NAME_MAX) {
        return Err(format!("{what}: {name:?} is not a profile group name PAN-OS accepts"));
    }
    if !known.iter().any(|k| k == name) {
        return Err(format!(
            "{what} names profile group {name:?}, which neither the device group, its ancestor device groups nor shared holds"
        ));
    }
    Ok(name.to_owned())
}

/// The Service's annotations → its rule's applications and profile group, or why not.
/// `known` are the profile groups Panorama holds for the device group.
pub fn read(annotations: &BTreeMap<String, String>, security: &SecuritySettings, known: &[String]) -> Result<RulePolicy, String> {
    let applications = match annotations.get(APPLICATIONS) {
        None => vec!["any".to_owned()],
        Some(v) => self::applications(v, &format!("annotation {APPLICATIONS}"))?,
    };
    let profile_group = match (annotations.get(PROFILE_GROUP), &security.profile_group) {
        (Some(v), _) => Some(profile_group(v, &format!("annotation {PROFILE_GROUP}"), known)?),
        (None, Some(default)) => Some(profile_group(default, "sync.security.profile_group", known)?),
        (None, None) => None,
    };
    Ok(RulePolicy { applications, profile_group })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn annotations_as_pan_os_would_take_them() {
        let known = vec!["strict".to_owned(), "default".to_owned()];
        let plain = SecuritySettings::default();
        let with_default = SecuritySettings { profile_group: Some("default".into()), ..SecuritySettings::default() };
        let missing_default = SecuritySettings { profile_group: Some("gone".into()), ..SecuritySettings::default() };
        // (annotations, settings, Ok((apps, profile)) | Err(part of the reason))
        type Want = Result<(&'static [&'static str], Option<&'static str>), &'static str>;
        let table: &[(&[(&str, &str)], &SecuritySettings, Want)] = &[
            (&[], &plain, Ok((&["any"], None))),
            (&[], &with_default, Ok((&["any"], Some("default")))),
            (&[(APPLICATIONS, "web-browsing, ssl,ssl")], &plain, Ok((&["ssl", "web-browsing"], None))),
            (&[(APPLICATIONS, "some-new-app-id")], &plain, Ok((&["some-new-app-id"], None))),
            (&[(APPLICATIONS, "ssl,,web-browsing")], &plain, Err("empty item")),
            (&[(APPLICATIONS, "")], &plain, Err("empty item")),
            (&[(APPLICATIONS, "ssl,")], &plain, Err("empty item")),
            (&[(APPLICATIONS, "web browsing")], &plain, Err("not an application name")),
            (&[(APPLICATIONS, "'ssl'")], &plain, Err("not an application name")),
            (&[(APPLICATIONS, "a-very-long-application-name-over-31")], &plain, Err("not an application name")),
            (&[(APPLICATIONS, "any,ssl")], &plain, Err("combines \"any\"")),
            (&[(PROFILE_GROUP, "strict")], &with_default, Ok((&["any"], Some("strict")))),
            (&[(PROFILE_GROUP, "nope")], &plain, Err("pano-eks/profile-group names profile group \"nope\"")),
            (&[(PROFILE_GROUP, "")], &plain, Err("not a profile group name")),
            (&[], &missing_default, Err("sync.security.profile_group names profile group \"gone\"")),
        ];
        for (pairs, settings, want) in table {
            let ann: BTreeMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
            let got = read(&ann, settings, &known);
            match (want, &got) {
                (Ok((apps, profile)), Ok(p)) => {
                    assert_eq!(p.applications, apps.iter().map(|a| a.to_string()).collect::<Vec<_>>(), "{pairs:?}");
                    assert_eq!(p.profile_group.as_deref(), *profile, "{pairs:?}");
                }
                (Err(part), Err(why)) => assert!(why.contains(part), "{pairs:?}: {why}"),
                _ => panic!("{pairs:?}: want {want:?}, got {got:?}"),
            }
        }
    }
}
