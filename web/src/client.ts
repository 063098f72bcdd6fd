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
  'RefundRequestConnection', 'RefundRequestEdge', 'AutoTopUp', 'AutoTopUpPayload'];

const LIST_CHANGING_MUTATIONS = ['purchaseCreditPack', 'changePlan', 'cancelPlan', 'requestRefund', 'startGeneration', 'cancelGeneration', 'adjustCredits', 'reviewRefundRequest'];
const LISTS = new Set(['ledger', 'purchases', 'refundRequests', 'jobs']);

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
            ...Object.fromEntries(LIST_CHANGING_MUTATIONS.map((m) => [m, (_r: unknown, _a: unknown, cache: Cache) => refreshLists(cache)])),
            setAutoTopUp: (r: { setAutoTopUp?: { autoTopUp?: AutoTopUpFieldsFragment | null } }, a: { input?: { workspaceId?: unknown } }, cache: Cache) =>
              writeAutoTopUp(cache, r.setAutoTopUp, a.input?.workspaceId),
            disableAutoTopUp: (r: { disableAutoTopUp?: { autoTopUp?: AutoTopUpFieldsFragment | null } }, a: { workspaceId?: unknown }, cache: Cache) =>
              writeAutoTopUp(cache, r.disableAutoTopUp, a.workspaceId),
          },
          Subscription: { balanceChanged: (_r: unknown, _a: unknown, cache: Cache) => refreshLists(cache) },
        },
        resolvers: {
          Account: { ledger: relayPagination(), purchases: relayPagination(), notifications: relayPagination(), refundRequests: relayPagination() },
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
