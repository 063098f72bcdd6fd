import { IsInt, IsOptional, Length, Matches, Max, Min } from 'class-validator';
import { Field, ID, InputType, Int, ObjectType, registerEnumType } from 'type-graphql';
import { UserError } from '../../common/errors/user-error.type';
import { IdempotencyKeyField } from '../../common/idempotency/idempotency-key.field';
import { Connection } from '../../common/relay/connection.type';
import type { AccountEntity } from '../accounts/account.entity';

export enum WorkspaceRole {
  OWNER = 'OWNER',
  ADMIN = 'ADMIN',
  MEMBER = 'MEMBER',
}
registerEnumType(WorkspaceRole, { name: 'WorkspaceRole', description: 'OWNER (exactly one) and ADMIN manage; every member may generate from the pool' });

export interface WorkspaceRow {
  id: string;
  name: string;
  created_by: string;
  created_at: Date;
}

export interface MemberRow {
  workspace_id: string;
  account_id: string;
  role: WorkspaceRole;
  monthly_limit: number | null;
  joined_at: Date;
  spent_this_month: number;
}

@ObjectType({ description: 'A shared credit pool: a billing account of its own, with members' })
export class Workspace {
  @Field(_type => ID) id: string;
  @Field(_type => String) name: string;
  @Field(_type => WorkspaceRole, { description: "The caller's role in it" }) myRole: WorkspaceRole;
  /** Not exposed: the workspace's account row and who asks. */
  account: AccountEntity;
  caller: string;

  static of(w: WorkspaceRow, account: AccountEntity, myRole: WorkspaceRole, caller: string): Workspace {
    return Object.assign(new Workspace(), { id: w.id, name: w.name, myRole, account, caller });
  }
}

@ObjectType()
export class WorkspaceMember {
  @Field(_type => ID) accountId: string;
  @Field(_type => WorkspaceRole) role: WorkspaceRole;
  @Field(_type => Int, { nullable: true, description: 'Credits per calendar month (UTC) this member may spend; null: no limit' }) monthlyLimit: number | null;
  @Field(_type => Int, { description: 'Spent from the pool this calendar month (UTC), net of refunds' }) spentThisMonth: number;
  @Field(_type => Date) joinedAt: Date;

  static of(r: MemberRow): WorkspaceMember {
    return Object.assign(new WorkspaceMember(), {
      accountId: r.account_id, role: r.role, monthlyLimit: r.monthly_limit, spentThisMonth: r.spent_this_month, joinedAt: r.joined_at,
    });
  }
}

@ObjectType()
export class WorkspaceMemberConnection extends Connection(WorkspaceMember) {}

@InputType()
export class CreateWorkspaceInput {
  @Field(_type => String, { description: '1 to 100 characters, not blank' })
  @Length(1, 100)
  @Matches(/\S/, { message: 'name must not be blank' })
  @Matches(/^[^\u0000]*$/, { message: 'name must not contain NUL characters' })
  name: string;

  @IdempotencyKeyField()
  idempotencyKey?: string | null;
}

@InputType()
export class WorkspaceMemberInput {
  @Field(_type => ID)
  @Length(1, 128)
  workspaceId: string;

  @Field(_type => ID, { description: "The member's account id (their token subject)" })
  @Length(1, 128)
  @Matches(/^[^\u0000]*$/, { message: 'accountId must not contain NUL characters' })
  accountId: string;

  @Field(_type => WorkspaceRole)
  role: WorkspaceRole;

  @Field(_type => Int, { nullable: true, description: 'Credits per calendar month (UTC); null: no limit' })
  @IsOptional()
  @IsInt()
  @Min(0)
  @Max(1_000_000_000)
  monthlyLimit?: number | null;
}

@InputType()
export class RemoveWorkspaceMemberInput {
  @Field(_type => ID)
  @Length(1, 128)
  workspaceId: string;

  @Field(_type => ID)
  @Length(1, 128)
  accountId: string;
}

@ObjectType()
export class WorkspacePayload {
  @Field(_type => Workspace, { nullable: true }) workspace: Workspace | null;
  @Field(_type => [UserError]) userErrors: UserError[];
}

@ObjectType()
export class WorkspaceMemberPayload {
  @Field(_type => WorkspaceMember, { nullable: true }) member: WorkspaceMember | null;
  @Field(_type => Workspace, { nullable: true }) workspace: Workspace | null;
  @Field(_type => [UserError]) userErrors: UserError[];
}
