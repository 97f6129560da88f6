// A plugin written in JavaScript, componentized with componentize-js against
// ../../wit/plugins.wit (world `plugin`). The WIT is the contract, not the language.
import { log } from 'acme:plugins/log@1.0.0';
import { emit } from 'acme:plugins/events@1.0.0';
import { Counter } from 'acme:plugins/counters@1.0.0';

export function run(input) {
  const names = input.split(/[\s,]+/).filter((n) => n.length > 0);
  const greeted = new Counter('greeted');
  for (const name of names) {
    log('info', `hello, ${name}!`);
    emit({ kind: 'greeted', attributes: [['name', name], ['language', 'javascript']], value: undefined });
    greeted.add(1n);
  }
  return `greeted ${names.length} name(s); ${greeted.get()} in all`;
}
