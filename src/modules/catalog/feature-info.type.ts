import { Field, ObjectType } from 'type-graphql';
import { Feature } from './catalog.enums';

@ObjectType({ description: 'A feature a plan can include, with its name and what it gives.' })
export class FeatureInfo {
  @Field(_type => Feature) code: Feature;
  @Field(_type => String) name: string;
  @Field(_type => String) description: string;
}
