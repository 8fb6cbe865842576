//! The firewall autoscaling group's size. `down` scales the group to zero outside CloudFormation
//! before it deletes the stack; when that `down` is interrupted, the stack still reads "up to
//! date" to CloudFormation (its template and parameters did not change), so `up` must put the
//! size the stack declares back itself. `restore` decides; `observe`/`apply` talk to AWS.

use super::{Aws, AwsError, sdk_err};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Size {
    pub min: i32,
    pub max: i32,
    pub desired: i32,
}

/// The size to set, when the group's differs from what the firewall stack declares
/// (MinSize = MaxSize = DesiredCapacity = `firewalls.count`). `None`: nothing to do (right size,
/// or no group: the stack creates it).
pub fn restore(observed: Option<Size>, count: u32) -> Option<Size> {
    let n = i32::try_from(count).unwrap_or(i32::MAX);
    let want = Size { min: n, max: n, desired: n };
    observed.filter(|o| *o != want).map(|_| want)
}

/// The group's size; `None` when the group does not exist.
pub async fn observe(aws: &Aws, name: &str) -> Result<Option<Size>, AwsError> {
    let r = aws
        .asg
        .describe_auto_scaling_groups()
        .auto_scaling_group_names(name)
        .send()
        .await
        .map_err(|e| sdk_err("autoscaling:DescribeAutoScalingGroups", e))?;
    Ok(r.auto_scaling_groups().first().map(|g| Size {
        min: g.min_size().unwrap_or_default(),
        max: g.max_size().unwrap_or_default(),
        desired: g.desired_capacity().unwrap_or_default(),
    }))
}

pub async fn apply(aws: &Aws, name: &str, size: Size) -> Result<(), AwsError> {
    aws.asg
        .update_auto_scaling_group()
        .auto_scaling_group_name(name)
        .min_size(size.min)
        .max_size(size.max)
        .desired_capacity(size.desired)
        .send()
        .await
        .map_err(|e| sdk_err("autoscaling:UpdateAutoScalingGroup", e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_declared_size_is_restored_after_an_interrupted_down() {
        let s = |min, max, desired| Size { min, max, desired };
        for (observed, count, want) in [
            (None, 2, None),                         // no group yet: the stack makes it
            (Some(s(2, 2, 2)), 2, None),             // right size
            (Some(s(0, 2, 0)), 2, Some(s(2, 2, 2))), // `down` scaled it to zero, then stopped
            (Some(s(0, 2, 1)), 2, Some(s(2, 2, 2))), // halfway
            (Some(s(2, 2, 2)), 4, Some(s(4, 4, 4))), // count changed (the stack update does it too)
            (Some(s(6, 6, 6)), 2, Some(s(2, 2, 2))), // scaled up by hand
        ] {
            assert_eq!(restore(observed, count), want, "{observed:?} count {count}");
        }
    }
}
