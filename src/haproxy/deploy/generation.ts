/**
 * Counts the changes made to the deployer's expected state (the desired certificates and map
 * contents). A reconcile pass that finds the instance's replies unchanged may skip its comparison
 * only if this count is the same as at the last comparison. Counted in the maps themselves, so no
 * change is missed by a call site that forgot to say so.
 */
export class DeployGeneration {
  private n = 0;

  get value(): number {
    return this.n;
  }

  bump(): void {
    this.n++;
  }
}

/** A Map whose every change bumps `generation`. */
export class CountedMap<K, V> extends Map<K, V> {
  private readonly generation: DeployGeneration;

  constructor(generation: DeployGeneration) {
    super();
    this.generation = generation;
  }

  override set(key: K, value: V): this {
    this.generation.bump();
    return super.set(key, value);
  }

  override delete(key: K): boolean {
    const had = super.delete(key);
    if (had) this.generation.bump();
    return had;
  }

  override clear(): void {
    if (this.size > 0) this.generation.bump();
    super.clear();
  }
}
