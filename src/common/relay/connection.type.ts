import { Field, Int, ObjectType, type ClassType } from 'type-graphql';
import { PageInfo } from './page-info.type';

export interface Edge<T> {
  cursor: string;
  node: T;
}

export interface ConnectionShape<T> {
  edges: Edge<T>[];
  pageInfo: PageInfo;
  /** A getter: the COUNT query runs only when the field is selected. */
  readonly totalCount: Promise<number>;
}

/** A Relay connection type for `node`: `<Name>Connection { edges { cursor node } pageInfo totalCount }`. */
export function Connection<T extends object>(node: ClassType<T>, name = node.name) {
  @ObjectType(`${name}Edge`)
  class EdgeType {
    @Field(_type => String) cursor: string;
    @Field(_type => node) node: T;
  }

  @ObjectType()
  abstract class ConnectionType {
    @Field(_type => [EdgeType]) edges: EdgeType[];
    @Field(_type => PageInfo) pageInfo: PageInfo;
    @Field(_type => Int, { description: 'Number of items across all pages' }) totalCount: number;
  }
  return ConnectionType;
}
