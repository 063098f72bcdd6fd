import type { AuthChecker } from 'type-graphql';
import type { Context } from '../../context';
import { forbidden, unauthenticated } from '../errors/graphql-errors';

/** `@Authorized()` needs a valid token; `@Authorized(Role.ADMIN)` also needs that role. */
export const authChecker: AuthChecker<Context> = ({ context }, roles) => {
  if (!context.identity) throw unauthenticated();
  if (roles.length > 0 && !roles.includes(context.identity.role)) {
    throw forbidden(`This operation needs the role ${roles.join(' or ')}`);
  }
  return true;
};
