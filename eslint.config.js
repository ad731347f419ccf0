import js from '@eslint/js'
import tseslint from 'typescript-eslint'

export default tseslint.config(
  { ignores: ['**/dist/**', '**/node_modules/**', '**/.nx/**', 'loadtest/results/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/consistent-type-imports': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_' }],
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: ['@fairlane/*/src/*', '@fairlane/*/src'],
              message: 'Import a lib through its entry point.',
            },
            {
              group: ['**/services/**', '@fairlane/fairlane'],
              message: 'Nothing imports a service.',
            },
            {
              group: ['../../libs/**', '../../../libs/**'],
              message: 'Import a lib by its package name.',
            },
          ],
        },
      ],
    },
  },
)
