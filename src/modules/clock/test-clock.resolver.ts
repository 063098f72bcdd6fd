import { Arg, Authorized, Ctx, Float, Mutation, Resolver } from 'type-graphql';
import { Role } from '../../common/auth/role.enum';
import { badUserInput, forbidden } from '../../common/errors/graphql-errors';
import type { Context } from '../../context';

@Resolver()
export class TestClockResolver {
  @Authorized(Role.ADMIN)
  @Mutation(_returns => Date, { description: 'Admin, TEST_CLOCK=1 only: moves the clock forward and runs what fell due (expiries, renewals) before returning the new time.' })
  async advanceTestClock(@Arg('hours', _type => Float) hours: number, @Ctx() ctx: Context): Promise<Date> {
    if (!ctx.services.config.testClock) throw forbidden('The test clock is not enabled (TEST_CLOCK=1, never in production)');
    if (!Number.isFinite(hours) || hours <= 0 || hours > 24 * 366 * 5) throw badUserInput('hours must be above 0 and at most five years', ['hours']);
    return ctx.services.testClock.advance(hours * 3600 * 1000, () => ctx.services.dueWork());
  }
}
