//! Reads the five containers pano-eks writes into, from the candidate or the running config.
//! Every entry is returned, owned or not: ownership is the planning core's decision.

use pano_eks_core::Observed;

use super::client::{PanoramaClient, PanosError};
use super::codec;
use super::locations::{KINDS, Locations};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Which {
    /// `action=get`: the candidate config, including uncommitted changes.
    Candidate,
    /// `action=show`: the running (committed) config.
    Running,
}

pub async fn read(client: &PanoramaClient, locs: &Locations, which: Which) -> Result<Observed, PanosError> {
    // The five reads run concurrently; the client keeps them within its in-flight limit.
    let reads = KINDS.map(|kind| {
        let xp = locs.container(kind);
        async move {
            let r = match which {
                Which::Candidate => client.get(&xp).await?,
                Which::Running => client.show(&xp).await?,
            };
            Ok::<_, PanosError>((kind, r))
        }
    });
    let results = futures_join(reads).await;
    let mut seen = Observed::default();
    for r in results {
        let (kind, result) = r?;
        if let Some(result) = result {
            // `get` wraps the matched node in <result>; the container is its one child.
            for container in result.elements() {
                codec::decode_container(kind, container, &mut seen);
            }
        }
    }
    Ok(seen)
}

async fn futures_join<F: std::future::Future>(futs: [F; 5]) -> [F::Output; 5] {
    let [a, b, c, d, e] = futs;
    let (a, b, c, d, e) = tokio::join!(a, b, c, d, e);
    [a, b, c, d, e]
}
