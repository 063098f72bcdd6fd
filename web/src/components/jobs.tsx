import { useMutation, useQuery, useSubscription } from '@urql/preact';
import { CancelGenerationDocument, JobUpdatedDocument, JobsDocument, type GenerationJobFieldsFragment } from '../../../client/generated/graphql';
import { credits, when } from '../format';

/** Live job cards: the list from the query, every change from jobUpdated (a new job refreshes the list). */
export function Jobs() {
  const [jobs, refetch] = useQuery({ query: JobsDocument, variables: { first: 10 } });
  const list = jobs.data?.me.jobs.edges.map((e) => e.node) ?? [];
  useSubscription({ query: JobUpdatedDocument, variables: {} }, (_prev, data) => {
    if (!list.some((j) => j.id === data.jobUpdated.id)) refetch({ requestPolicy: 'network-only' });
    return data;
  });
  return (
    <section class="card" aria-labelledby="jobs-heading">
      <h2 id="jobs-heading">Your generations</h2>
      {list.length === 0 && <p class="muted">Nothing yet: start one above.</p>}
      <ul class="cards">
        {list.map((j) => (
          <JobCard key={j.id} job={j} />
        ))}
      </ul>
    </section>
  );
}

function JobCard({ job }: { job: GenerationJobFieldsFragment }) {
  const [cancel, cancelGeneration] = useMutation(CancelGenerationDocument);
  const s = job.settings;
  return (
    <li class="job" data-testid="job-card" data-status={job.status} data-job-id={job.id}>
      <div class="row spread">
        <b>{job.type === 'IMAGE' ? `${s.count} × ${s.imageQuality?.toLowerCase()} image` : `${s.durationSeconds}s ${s.videoQuality?.toLowerCase()} video`}</b>
        <span class={`status ${job.status.toLowerCase()}`}>{job.status.charAt(0) + job.status.slice(1).toLowerCase()}</span>
      </div>
      <p class="prompt">{job.prompt}</p>
      <p class="muted">
        {s.width}×{s.height} · {s.model} · {credits(job.credits)}
        {job.refunded ? ' (refunded)' : ''} · {when(job.createdAt)}
        {job.queuePosition ? ` · #${job.queuePosition} in the ${job.queueClass.toLowerCase()} queue` : ''}
      </p>
      {(job.status === 'RUNNING' || job.status === 'QUEUED') && (
        <progress max={100} value={job.progress} aria-label={`Progress ${job.progress}%`}>
          {job.progress}%
        </progress>
      )}
      {job.failureReason && <p class="error">Failed: {job.failureReason}</p>}
      {job.resultUrls.length > 0 && (
        <ul class="results">
          {job.resultUrls.map((u, i) => (
            <li key={u}>
              <a href={u} target="_blank" rel="noreferrer">
                Result {i + 1}
              </a>
            </li>
          ))}
        </ul>
      )}
      {job.status === 'QUEUED' && (
        <button type="button" class="secondary" disabled={cancel.fetching} onClick={() => cancelGeneration({ jobId: job.id })}>
          Cancel (credits back)
        </button>
      )}
    </li>
  );
}
