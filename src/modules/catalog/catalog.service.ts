import type { DataSource } from 'typeorm';
import { CreditPackEntity } from './credit-pack.entity';
import { GenerationModelEntity } from './generation-model.entity';
import { TierEntity } from './tier.entity';
import { TierCode } from './catalog.enums';

interface Snapshot {
  tiers: TierEntity[];
  packs: CreditPackEntity[];
  models: GenerationModelEntity[];
  loadedAt: number;
}

/**
 * The catalog (tiers, packs, models) is data in the database. It is read often and changed
 * rarely, so it is cached for a few seconds; an operator's edit shows within that time.
 */
export class CatalogService {
  private snapshot?: Promise<Snapshot>;

  constructor(private readonly db: DataSource, private readonly ttlMs = 5000) {}

  private load(): Promise<Snapshot> {
    const current = this.snapshot;
    if (current) return current.then((s) => (Date.now() - s.loadedAt < this.ttlMs ? s : this.reload()));
    return this.reload();
  }

  private reload(): Promise<Snapshot> {
    const p = (async () => ({
      tiers: await this.db.getRepository(TierEntity).find({ order: { rank: 'ASC' } }),
      packs: await this.db.getRepository(CreditPackEntity).find({ where: { active: true }, order: { sortOrder: 'ASC', credits: 'ASC' } }),
      models: await this.db.getRepository(GenerationModelEntity).find({ where: { active: true }, order: { sortOrder: 'ASC' } }),
      loadedAt: Date.now(),
    }))();
    this.snapshot = p;
    p.catch(() => {
      if (this.snapshot === p) this.snapshot = undefined;
    });
    return p;
  }

  invalidate(): void {
    this.snapshot = undefined;
  }

  async tiers(): Promise<TierEntity[]> {
    return (await this.load()).tiers;
  }

  async tier(code: TierCode): Promise<TierEntity> {
    const tier = (await this.load()).tiers.find((t) => t.code === code);
    if (!tier) throw new Error(`tier ${code} is missing from the catalog`);
    return tier;
  }

  async packs(): Promise<CreditPackEntity[]> {
    return (await this.load()).packs;
  }

  /** Packs that would cover a shortfall of `missing` credits, smallest first. */
  async packsCovering(missing: number): Promise<CreditPackEntity[]> {
    return (await this.packs()).filter((p) => p.credits >= missing).sort((a, b) => a.credits - b.credits);
  }

  async models(): Promise<GenerationModelEntity[]> {
    return (await this.load()).models;
  }
}
