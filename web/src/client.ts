/**
 * The GraphQL client: urql with its normalised cache (graphcache) over HTTP, and graphql-ws for
 * subscriptions on the same origin. Every entity has an id (Balance: its account's), so a
 * balanceChanged event or a mutation's balance updates every screen that shows it.
 */
import { cacheExchange, type Cache } from '@urql/exchange-graphcache';
import { relayPagination } from '@urql/exchange-graphcache/extras';
import { Client, fetchExchange, subscriptionExchange } from '@urql/core';
import { createClient as createWsClient, type Client as WsClient } from 'graphql-ws';
import { AutoTopUpDocument, type AutoTopUpFieldsFragment } from '../../client/generated/graphql';

/** Types without an id of their own: kept inside their parent. */
const EMBEDDED = ['Plan', 'CostLine', 'GenerationSettings', 'PageInfo', 'UserError', 'PlanChangePreview', 'ReadNotificationsPayload', 'CreditWarning', 'PriceBook', 'PriceClassRule',
  'StartGenerationPayload', 'CancelGenerationPayload', 'PurchasePayload', 'ChangePlanPayload', 'RequestRefundPayload', 'AdjustCreditsPayload', 'PublishPriceBookPayload',
  'LedgerEntryConnection', 'LedgerEntryEdge', 'PurchaseConnection', 'PurchaseEdge', 'GenerationJobConnection', 'GenerationJobEdge', 'NotificationConnection', 'NotificationEdge',
  'RefundRequestConnection', 'RefundRequestEdge', 'AutoTopUp', 'AutoTopUpPayload',
  // A member has no id of its own (one account, many workspaces): kept inside its workspace's `members`.
  'WorkspaceMember', 'WorkspaceMemberConnection', 'WorkspaceMemberEdge', 'WorkspacePayload', 'WorkspaceMemberPayload'];

const LIST_CHANGING_MUTATIONS = ['purchaseCreditPack', 'changePlan', 'cancelPlan', 'requestRefund', 'startGeneration', 'cancelGeneration', 'adjustCredits', 'reviewRefundRequest'];
const LISTS = new Set(['ledger', 'purchases', 'refundRequests', 'jobs']);
const WORKSPACE_LISTS = new Set(['ledger', 'purchases', 'jobs', 'members']);

/** The workspace a mutation acted for (input.workspaceId, or a workspaceId argument), if any. */
function workspaceOf(args: { input?: { workspaceId?: unknown }; workspaceId?: unknown }): string | undefined {
  const id = args.input?.workspaceId ?? args.workspaceId;
  return typeof id === 'string' ? id : undefined;
}

/** A change for a workspace: its lists (and its members' spending) are read again. */
function refreshWorkspace(cache: Cache, id: string): void {
  const key = cache.keyOfEntity({ __typename: 'Workspace', id });
  if (!key) return;
  for (const f of cache.inspectFields(key)) if (WORKSPACE_LISTS.has(f.fieldName)) cache.invalidate(key, f.fieldName, f.arguments ?? undefined);
}

/** The signed-in account's list of workspaces is read again. */
function refreshMyWorkspaces(cache: Cache): void {
  const me = cache.resolve('Query', 'me');
  if (typeof me === 'string') cache.invalidate(me, 'workspaces');
}

function refreshLists(cache: Cache): void {
  const me = cache.resolve('Query', 'me');
  if (typeof me === 'string') for (const f of cache.inspectFields(me)) if (LISTS.has(f.fieldName)) cache.invalidate(me, f.fieldName, f.arguments ?? undefined);
  for (const f of cache.inspectFields('Query')) if (f.fieldName === 'refundRequestsToReview') cache.invalidate('Query', f.fieldName, f.arguments ?? undefined);
}

/**
 * AutoTopUp has no id (it is part of its account): a set/disable answer is written into the
 * signed-in account's `autoTopUp`, so the panel and `me` show the saved settings at once.
 */
function writeAutoTopUp(cache: Cache, payload: { autoTopUp?: AutoTopUpFieldsFragment | null } | null | undefined, workspaceId: unknown): void {
  if (workspaceId != null || !payload?.autoTopUp) return;
  const autoTopUp = payload.autoTopUp;
  let written = false;
  cache.updateQuery({ query: AutoTopUpDocument }, (data) => {
    if (!data) return data;
    written = true;
    return { ...data, me: { ...data.me, autoTopUp } };
  });
  const me = cache.resolve('Query', 'me');
  if (!written && typeof me === 'string') cache.invalidate(me, 'autoTopUp');
}

export interface Connection {
  client: Client;
  ws: WsClient;
  /** Resolves each time the websocket (re)connects: a reconnect brings current values first. */
  onConnected(listener: () => void): () => void;
}

export function connect(token: string, onAuthFailed: () => void): Connection {
  const wsUrl = `${location.origin.replace(/^http/, 'ws')}/graphql`;
  const ws = createWsClient({
    url: wsUrl,
    connectionParams: () => ({ authorization: `Bearer ${token}` }),
    retryAttempts: Infinity,
    shouldRetry: () => true,
    retryWait: async (retries) => new Promise((r) => setTimeout(r, Math.min(5000, 250 * 2 ** retries))),
    on: {
      closed: (e) => {
        if ((e as CloseEvent | undefined)?.code === 4403 || (e as CloseEvent | undefined)?.code === 4401) onAuthFailed();
      },
    },
  });
  const client = new Client({
    url: '/graphql',
    preferGetMethod: false, // POST with a JSON body: Apollo's CSRF prevention refuses a GET without a preflight header
    fetchOptions: () => ({ headers: { authorization: `Bearer ${token}` } }),
    requestPolicy: 'cache-and-network',
    exchanges: [
      cacheExchange({
        keys: { ...Object.fromEntries(EMBEDDED.map((t) => [t, () => null])), FeatureInfo: (f) => String(f.code) },
        // A change to money or jobs refreshes the lists of the signed-in account that show it.
        updates: {
          Mutation: {
            ...Object.fromEntries(
              LIST_CHANGING_MUTATIONS.map((m) => [
                m,
                (_r: unknown, a: { input?: { workspaceId?: unknown }; workspaceId?: unknown }, cache: Cache) => {
                  refreshLists(cache);
                  const ws = workspaceOf(a);
                  if (ws) refreshWorkspace(cache, ws);
                },
              ]),
            ),
            createWorkspace: (r: { createWorkspace?: { workspace?: unknown } }, _a: unknown, cache: Cache) => {
              if (r.createWorkspace?.workspace) refreshMyWorkspaces(cache);
            },
            // Members changed; a caller who left gets no workspace back and sees it no more.
            ...Object.fromEntries(
              ['setWorkspaceMember', 'removeWorkspaceMember'].map((m) => [
                m,
                (r: Record<string, { workspace?: unknown; userErrors?: unknown[] } | undefined>, a: { input: { workspaceId: string } }, cache: Cache) => {
                  const out = r[m];
                  if (!out || out.userErrors?.length) return;
                  refreshWorkspace(cache, a.input.workspaceId);
                  if (!out.workspace) {
                    refreshMyWorkspaces(cache);
                    cache.invalidate({ __typename: 'Workspace', id: a.input.workspaceId });
                  }
                },
              ]),
            ),
            setAutoTopUp: (r: { setAutoTopUp?: { autoTopUp?: AutoTopUpFieldsFragment | null } }, a: { input?: { workspaceId?: unknown } }, cache: Cache) =>
              writeAutoTopUp(cache, r.setAutoTopUp, a.input?.workspaceId),
            disableAutoTopUp: (r: { disableAutoTopUp?: { autoTopUp?: AutoTopUpFieldsFragment | null } }, a: { workspaceId?: unknown }, cache: Cache) =>
              writeAutoTopUp(cache, r.disableAutoTopUp, a.workspaceId),
          },
          // A pool's balance (workspaceId) is its own cached Balance (its id is the workspace's): nothing of the account's to refresh.
          Subscription: { balanceChanged: (_r: unknown, a: { workspaceId?: unknown }, cache: Cache) => (a.workspaceId == null ? refreshLists(cache) : undefined) },
        },
        resolvers: {
          Account: { ledger: relayPagination(), purchases: relayPagination(), notifications: relayPagination(), refundRequests: relayPagination() },
          Workspace: { members: relayPagination() },
          Query: { refundRequestsToReview: relayPagination() },
        },
      }),
      fetchExchange,
      subscriptionExchange({
        forwardSubscription(request) {
          const input = { ...request, query: request.query || '' };
          return {
            subscribe(sink) {
              const unsubscribe = ws.subscribe(input, sink);
              return { unsubscribe };
            },
          };
        },
      }),
    ],
  });
  return {
    client,
    ws,
    onConnected: (listener) => ws.on('connected', listener),
  };
}
