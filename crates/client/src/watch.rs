//! Following a run: progress snapshots at a steady pace until it ends.

use std::time::Duration;

use futures::stream::{self, Stream};
use sluice_domain::ids::{PipelineId, RunId};
use sluice_domain::progress::RunProgress;

use crate::{Client, Error};

/// Where a watch is.
enum Step {
    First,
    Next,
    Done,
}

impl Client {
    /// The run's progress now, then every `every`, ending with the first
    /// snapshot whose status is terminal (`completed`,
    /// `completed_with_errors`, `failed`, `cancelled`). An error ends the
    /// stream after it is yielded.
    pub fn watch(
        &self,
        pipeline: PipelineId,
        run: RunId,
        every: Duration,
    ) -> impl Stream<Item = Result<RunProgress, Error>> + '_ {
        stream::unfold(Step::First, move |step| async move {
            match step {
                Step::Done => return None,
                Step::Next => tokio::time::sleep(every).await,
                Step::First => {}
            }
            match self.run_progress(pipeline, run).await {
                Ok(p) => {
                    let next = if p.status.is_terminal() {
                        Step::Done
                    } else {
                        Step::Next
                    };
                    Some((Ok(p), next))
                }
                Err(e) => Some((Err(e), Step::Done)),
            }
        })
    }
}
