/**
 * The status page's URLs, all under one prefix so its session cookie is scoped to them (Path=/status)
 * and never sent to /v1, which takes only `Authorization: Bearer`.
 */
export const STATUS_PATHS = {
  prefix: '/status',
  page: '/status',
  data: '/status/data',
  login: '/status/login',
  logout: '/status/logout',
} as const;
