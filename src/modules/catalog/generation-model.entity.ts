import { Column, Entity, PrimaryColumn } from 'typeorm';
import { GenerationType } from './catalog.enums';

@Entity('generation_models')
export class GenerationModelEntity {
  @PrimaryColumn({ type: 'text' }) code: string;
  @Column({ type: 'text' }) name: string;
  @Column({ type: 'text' }) type: GenerationType;
  @Column({ type: 'boolean' }) premium: boolean;
  @Column({ name: 'is_default', type: 'boolean' }) isDefault: boolean;
  @Column({ name: 'sort_order', type: 'int' }) sortOrder: number;
  @Column({ type: 'boolean' }) active: boolean;
}
