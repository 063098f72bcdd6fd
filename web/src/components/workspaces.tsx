import { useState } from 'preact/hooks';
import { useMutation, useQuery, useSubscription } from '@urql/preact';
import {
  BalanceChangedDocument,
  CreateWorkspaceDocument,
  MyWorkspacesDocument,
  SetWorkspaceMemberDocument,
  WorkspaceDocument,
  type WorkspaceMemberFieldsFragment,
  type WorkspaceRole,
} from '../../../client/generated/graphql';
import { credits } from '../format';
import { explain, explainWorkspaceRequest, limitText, memberSaved, MESSAGES, roleName } from '../messages';

const PAGE = 20;
type Outcome = { ok: boolean; text: string } | undefined;

/**
 * Workspaces (shared credit pools): the caller's, with their role and the pool's balance (a
 * Balance of its own: its id is the workspace's), a form to open one, and the members of the one
 * opened; its OWNER and ADMINs add members or change them there.
 */
export function Workspaces() {
  const [list] = useQuery({ query: MyWorkspacesDocument });
  const [selected, setSelected] = useState<string>();
  const workspaces = list.data?.me.workspaces ?? [];
  return (
    <section class="card" aria-labelledby="workspaces-heading" data-testid="workspaces">
      <h2 id="workspaces-heading">Workspaces</h2>
      <p class="muted">{MESSAGES.workspacesHint}</p>
      {list.error && !list.data && (
        <p role="alert" class="error">
          {explainWorkspaceRequest(list.error)}
        </p>
      )}
      {list.data && workspaces.length === 0 && <p data-testid="workspaces-empty">{MESSAGES.workspacesNone}</p>}
      {workspaces.length > 0 && (
        <div class="scroll">
          <table>
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">Your role</th>
                <th scope="col">Pool balance</th>
                <th scope="col">
                  <span class="sr-only">Open</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {workspaces.map((w) => (
                <tr key={w.id} data-testid="workspace-row" data-workspace-id={w.id} class={w.id === selected ? 'selected' : undefined}>
                  <td>{w.name}</td>
                  <td>{roleName(w.myRole)}</td>
                  <td data-testid="workspace-balance">{credits(w.balance.available)}</td>
                  <td>
                    <button type="button" class="secondary" aria-pressed={w.id === selected} onClick={() => setSelected(w.id)}>
                      Open
                    </button>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      <CreateWorkspace onCreated={setSelected} />
      {selected && <WorkspaceDetail key={selected} id={selected} />}
    </section>
  );
}

function CreateWorkspace({ onCreated }: { onCreated: (id: string) => void }) {
  const [name, setName] = useState('');
  const [creating, create] = useMutation(CreateWorkspaceDocument);
  const [outcome, setOutcome] = useState<Outcome>();
  const submit = async (e: Event) => {
    e.preventDefault();
    setOutcome(undefined);
    if (!name.trim()) return setOutcome({ ok: false, text: MESSAGES.workspaceNameNeeded });
    const r = await create({ input: { name: name.trim(), idempotencyKey: crypto.randomUUID() } });
    const out = r.data?.createWorkspace;
    if (!out) return setOutcome({ ok: false, text: explainWorkspaceRequest(r.error) ?? 'Something went wrong.' });
    if (out.userErrors.length || !out.workspace) return setOutcome({ ok: false, text: out.userErrors.length ? explain(out.userErrors[0]) : 'Something went wrong.' });
    setName('');
    setOutcome({ ok: true, text: `Created ${out.workspace.name}: you are its owner.` });
    onCreated(out.workspace.id);
  };
  return (
    <form onSubmit={submit} noValidate>
      <h3>New workspace</h3>
      <label for="workspace-name">Workspace name</label>
      <div class="row">
        <input id="workspace-name" data-testid="workspace-name" maxLength={100} value={name} onInput={(e) => setName((e.target as HTMLInputElement).value)} />
        <button type="submit" data-testid="create-workspace" disabled={creating.fetching}>
          Create workspace
        </button>
      </div>
      <Message outcome={outcome} testId="create-workspace-message" />
    </form>
  );
}

function WorkspaceDetail({ id }: { id: string }) {
  const [after, setAfter] = useState<string | null>(null);
  const [ws] = useQuery({ query: WorkspaceDocument, variables: { id, first: PAGE, after } });
  // The pool's balance, live while it is open: its own cached Balance (id: the workspace's), not the header's.
  useSubscription({ query: BalanceChangedDocument, variables: { workspaceId: id } });
  if (ws.error && !ws.data) {
    return (
      <p role="alert" class="error">
        {explainWorkspaceRequest(ws.error)}
      </p>
    );
  }
  if (!ws.data) return null;
  const w = ws.data.workspace;
  if (!w) return <p role="alert" class="error">{MESSAGES.workspaceGone}</p>;
  const manager = w.myRole === 'OWNER' || w.myRole === 'ADMIN';
  const members = w.members.edges.map((e) => e.node);
  return (
    <div class="preview" data-testid="workspace-detail" data-workspace-id={w.id}>
      <h3 data-testid="workspace-title">{w.name}</h3>
      <p data-testid="workspace-summary">
        {roleName(w.myRole)} · {w.plan.tier.name} plan · pool {credits(w.balance.available)} · {w.members.totalCount} {w.members.totalCount === 1 ? 'member' : 'members'}
      </p>
      <div class="scroll">
        <table>
          <caption>Members, newest first</caption>
          <thead>
            <tr>
              <th scope="col">Account</th>
              <th scope="col">Role</th>
              <th scope="col">Monthly limit</th>
              <th scope="col">Spent this month</th>
            </tr>
          </thead>
          <tbody>
            {members.map((m) => (
              <MemberRow key={m.accountId} member={m} />
            ))}
          </tbody>
        </table>
      </div>
      {w.members.pageInfo.hasNextPage && (
        <button type="button" class="secondary" data-testid="members-more" onClick={() => setAfter(w.members.pageInfo.endCursor ?? null)}>
          Show more
        </button>
      )}
      {manager ? <AddMember workspaceId={w.id} /> : <p class="muted" data-testid="members-managers-only">{MESSAGES.workspaceMembersOnlyManagers}</p>}
    </div>
  );
}

function MemberRow({ member: m }: { member: WorkspaceMemberFieldsFragment }) {
  return (
    <tr data-testid="member-row" data-account-id={m.accountId}>
      <td>{m.accountId}</td>
      <td>{roleName(m.role)}</td>
      <td>{limitText(m.monthlyLimit)}</td>
      <td>{credits(m.spentThisMonth)}</td>
    </tr>
  );
}

/** OWNER/ADMIN: setWorkspaceMember adds the account, or changes the member it already is. */
function AddMember({ workspaceId }: { workspaceId: string }) {
  const [accountId, setAccountId] = useState('');
  const [role, setRole] = useState<WorkspaceRole>('MEMBER');
  const [limit, setLimit] = useState('');
  const [saving, save] = useMutation(SetWorkspaceMemberDocument);
  const [outcome, setOutcome] = useState<Outcome>();
  const submit = async (e: Event) => {
    e.preventDefault();
    setOutcome(undefined);
    const monthlyLimit = limit.trim() === '' ? null : Number(limit);
    if (monthlyLimit !== null && (!Number.isInteger(monthlyLimit) || monthlyLimit < 0)) return setOutcome({ ok: false, text: MESSAGES.workspaceWholeLimit });
    const r = await save({ input: { workspaceId, accountId: accountId.trim(), role, monthlyLimit } });
    const out = r.data?.setWorkspaceMember;
    if (!out) return setOutcome({ ok: false, text: explainWorkspaceRequest(r.error) ?? 'Something went wrong.' });
    if (out.userErrors.length || !out.member) return setOutcome({ ok: false, text: out.userErrors.length ? explain(out.userErrors[0]) : 'Something went wrong.' });
    setOutcome({ ok: true, text: memberSaved(out.member.accountId, out.member.role, out.member.monthlyLimit ?? null) });
    setAccountId('');
    setLimit('');
  };
  return (
    <form onSubmit={submit} noValidate data-testid="add-member">
      <h3>Add a member</h3>
      <p class="muted">An account already in the workspace gets the role and limit entered here.</p>
      <label for="member-account">Account id</label>
      <input id="member-account" data-testid="member-account" required value={accountId} onInput={(e) => setAccountId((e.target as HTMLInputElement).value)} />
      <label for="member-role">Role</label>
      <select id="member-role" data-testid="member-role" value={role} onChange={(e) => setRole((e.target as HTMLSelectElement).value as WorkspaceRole)}>
        <option value="MEMBER">Member: generates from the pool</option>
        <option value="ADMIN">Admin: also buys credits and manages members</option>
      </select>
      <label for="member-limit">Monthly limit in credits (empty: no limit)</label>
      <input
        id="member-limit"
        data-testid="member-limit"
        type="number"
        inputMode="numeric"
        min={0}
        value={limit}
        onInput={(e) => setLimit((e.target as HTMLInputElement).value)}
      />
      <div class="row actions">
        <button type="submit" data-testid="save-member" disabled={saving.fetching || !accountId.trim()}>
          Add member
        </button>
      </div>
      <Message outcome={outcome} testId="member-message" />
    </form>
  );
}

function Message({ outcome, testId }: { outcome: Outcome; testId: string }) {
  if (!outcome) return null;
  return outcome.ok ? (
    <p role="status" data-testid={testId}>
      {outcome.text}
    </p>
  ) : (
    <p role="alert" class="error" data-testid={`${testId}-error`}>
      {outcome.text}
    </p>
  );
}
