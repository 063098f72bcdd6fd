export enum Role {
  USER = 'user',
  ADMIN = 'admin',
  WORKER = 'worker',
}
export const ROLES: readonly string[] = Object.values(Role);
