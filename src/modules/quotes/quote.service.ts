/**
 * Prices: settings → credits with the current price book, persisted as quotes that hold their
 * price until they expire (QUOTE_TTL_SECONDS, 10 minutes by default).
 */
import { randomUUID } from 'node:crypto';
import type { DataSource } from 'typeorm';
import type { Clock } from '../../common/clock';
import type { Tx } from '../../common/db/transaction';
import type { Feature, TierCode } from '../catalog/catalog.enums';
import type { CatalogService } from '../catalog/catalog.service';
import type { GenerationModelEntity } from '../catalog/generation-model.entity';
import { normalizeSettings, settingsKey, type NormalizedSettings, type SettingsInputShape } from './generation-settings';
import type { PriceBookService } from './price-book.service';
import { priceOf, type Price } from './price-rules';
import { isUuid } from '../../common/ids';
import { QuoteEntity } from './quote.entity';
import { cheapestTierAllowing, featureTier, missingFeatures } from './tier-gate';

export interface Priced {
  settings: NormalizedSettings;
  model: GenerationModelEntity;
  price: Price;
  priceBookVersion: number;
}

export interface QuoteView {
  id: string;
  credits: number;
  costClass: Price['costClass'];
  breakdown: Price['breakdown'];
  priceBookVersion: number;
  expiresAt: Date;
  affordable: boolean;
  canStart: boolean;
  balanceAfter: number;
  missingFeatures: Feature[];
  requiredTier: TierCode | null;
}

export class QuoteService {
  constructor(
    private readonly db: DataSource,
    private readonly clock: Clock,
    private readonly catalog: CatalogService,
    private readonly priceBooks: PriceBookService,
    private readonly ttlSeconds: number,
  ) {}

  /** Validates and prices settings with the current book (throws BAD_USER_INPUT on bad input). */
  async price(input: SettingsInputShape, path = 'settings'): Promise<Priced> {
    const [models, book] = await Promise.all([this.catalog.models(), this.priceBooks.current()]);
    const { settings, model } = normalizeSettings(input, models, path);
    return { settings, model, price: priceOf(book.rules, settings, model.premium), priceBookVersion: book.version };
  }

  /** The features the tier lacks and the cheapest tier that has them all. */
  async gate(tierCode: TierCode, p: Pick<Priced, 'settings' | 'model'> & { costClass: Price['costClass'] }) {
    const tiers = await this.catalog.tiers();
    const tier = tiers.find((t) => t.code === tierCode)!;
    return {
      missing: missingFeatures(tier, p.settings, p.costClass, p.model.premium),
      requiredTier: cheapestTierAllowing(tiers, p.settings, p.costClass, p.model.premium)?.code ?? null,
    };
  }

  /** Prices the settings for the account and keeps the quote. */
  async quote(accountId: string, input: SettingsInputShape): Promise<QuoteView> {
    const priced = await this.price(input);
    const [account] = (await this.db.query('SELECT available, tier, plan_status FROM accounts WHERE id = $1', [accountId])) as {
      available: number;
      tier: TierCode;
      plan_status: string;
    }[];
    const row = await this.save(undefined, accountId, priced);
    return this.view(row, account.available, featureTier(account), priced);
  }

  /** Stores a priced request as a quote (inside `tx` when given). */
  async save(tx: Tx | undefined, accountId: string, p: Priced): Promise<QuoteEntity> {
    const now = this.clock.now();
    const row: QuoteEntity = Object.assign(new QuoteEntity(), {
      id: randomUUID(),
      accountId,
      settings: p.settings,
      settingsKey: settingsKey(p.settings),
      priceBookVersion: p.priceBookVersion,
      credits: p.price.credits,
      costClass: p.price.costClass,
      breakdown: p.price.breakdown,
      createdAt: now,
      expiresAt: new Date(now.getTime() + this.ttlSeconds * 1000),
    });
    const sql = `INSERT INTO quotes (id, account_id, settings, settings_key, price_book_version, credits, cost_class, breakdown, created_at, expires_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`;
    const params = [row.id, accountId, JSON.stringify(row.settings), row.settingsKey, row.priceBookVersion, row.credits, row.costClass,
      JSON.stringify(row.breakdown), row.createdAt, row.expiresAt];
    if (tx) await tx.query(sql, params);
    else await this.db.query(sql, params);
    return row;
  }

  async view(row: QuoteEntity, available: number, tier: TierCode, p: Pick<Priced, 'settings' | 'model'>): Promise<QuoteView> {
    const { missing, requiredTier } = await this.gate(tier, { ...p, costClass: row.costClass });
    return {
      id: row.id,
      credits: row.credits,
      costClass: row.costClass,
      breakdown: row.breakdown,
      priceBookVersion: row.priceBookVersion,
      expiresAt: row.expiresAt,
      affordable: available >= row.credits,
      canStart: available >= row.credits && missing.length === 0,
      balanceAfter: available - row.credits,
      missingFeatures: missing,
      requiredTier,
    };
  }

  /** The caller's own quote, or undefined (another account's quote is treated as unknown). */
  async find(accountId: string, id: string): Promise<QuoteEntity | undefined> {
    if (!isUuid(id)) return undefined;
    const row = await this.db.getRepository(QuoteEntity).findOneBy({ id });
    return row && row.accountId === accountId ? row : undefined;
  }
}
