import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The default catalog. These are data, not code: operators edit the rows; nothing in the
 * services hard-codes a tier's credits, prices or features.
 * Annual prices are twelve months less 20%.
 */
export class SeedCatalog1764000000100 implements MigrationInterface {
  name = 'SeedCatalog1764000000100';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      INSERT INTO tiers (code, name, rank, monthly_credits, signup_credits, monthly_price_cents, annual_price_cents,
                         currency, queue_class, features, max_resolution, character_model_slots, default_low_credit_threshold)
      VALUES
        ('FREE',    'Free',    0,    0, 25,    0,     0, 'USD', 'STANDARD', '{}', 1024, 0, 5),
        ('CREATOR', 'Creator', 1,  300,  0, 1200, 11520, 'USD', 'PRIORITY',
           '{ULTRA_IMAGES,STANDARD_VIDEOS,ADVANCED_TOOLS,CHARACTER_MODELS}', 2048, 2, 30),
        ('PRO',     'Pro',     2, 1000,  0, 2900, 27840, 'USD', 'FAST',
           '{ULTRA_IMAGES,STANDARD_VIDEOS,PREMIUM_VIDEOS,PREMIUM_MODELS,HIGH_RESOLUTION,ADVANCED_TOOLS,CHARACTER_MODELS}', 4096, 5, 100),
        ('MAX',     'Max',     3, 3000,  0, 7900, 75840, 'USD', 'INSTANT',
           '{ULTRA_IMAGES,STANDARD_VIDEOS,PREMIUM_VIDEOS,PREMIUM_MODELS,HIGH_RESOLUTION,ADVANCED_TOOLS,CHARACTER_MODELS}', 8192, 20, 300)
    `);
    await q.query(`
      INSERT INTO credit_packs (code, name, credits, price_cents, currency, sort_order) VALUES
        ('STARTER', 'Starter pack',  50,  500, 'USD', 1),
        ('CREATOR', 'Creator pack', 200, 1800, 'USD', 2),
        ('PRO',     'Pro pack',     500, 4000, 'USD', 3)
    `);
    await q.query(`
      INSERT INTO generation_models (code, name, type, premium, is_default, sort_order) VALUES
        ('lumen-image',       'Lumen Image',        'IMAGE', false, true,  1),
        ('lumen-image-fast',  'Lumen Image Fast',   'IMAGE', false, false, 2),
        ('lumen-image-pro',   'Lumen Image Pro',    'IMAGE', true,  false, 3),
        ('lumen-video',       'Lumen Video',        'VIDEO', false, true,  4),
        ('lumen-video-pro',   'Lumen Video Pro',    'VIDEO', true,  false, 5)
    `);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DELETE FROM generation_models`);
    await q.query(`DELETE FROM credit_packs`);
    await q.query(`DELETE FROM tiers`);
  }
}
