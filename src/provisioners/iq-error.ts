/** An IQ error from the server is a definite answer (unlike a timeout or a lost link). */
export interface IqErrorLike {
  condition: string;
  text?: string;
}

export function isIqError(err: unknown): err is Error & IqErrorLike {
  return err instanceof Error && typeof (err as { condition?: unknown }).condition === 'string';
}
