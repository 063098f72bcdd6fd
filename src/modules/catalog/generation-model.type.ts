import { Field, ObjectType } from 'type-graphql';
import { GenerationType } from './catalog.enums';

@ObjectType()
export class GenerationModel {
  @Field(_type => String) code: string;
  @Field(_type => String) name: string;
  @Field(_type => GenerationType) type: GenerationType;
  @Field(_type => Boolean) premium: boolean;
}
